"""``mset``: the admin command line. Creates agencies (API keys) and staff users (tokens).

Secrets are printed once and stored only as hashes: copy them when shown.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from mset_contract.vocab import AgencyType, Role
from services.referral.domain import AgencyExists, AgencyNotFound
from services.referral.identity import Identity, Issued
from services.referral.migrate import upgrade
from services.referral.settings import ReferralSettings
from services.referral.store import Store, make_engine

app = typer.Typer(help="MSET Flow administration.", no_args_is_help=True)
agency_app = typer.Typer(help="Partner agencies and their API keys.", no_args_is_help=True)
user_app = typer.Typer(help="Staff users and their bearer tokens.", no_args_is_help=True)
app.add_typer(agency_app, name="agency")
app.add_typer(user_app, name="user")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _identity() -> Identity:
    settings = ReferralSettings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return Identity(Store(engine))


def _emit(issued: Issued, kind: str, secret_name: str, as_json: bool, **extra: str) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {"id": str(issued.id), "name": issued.name, secret_name: issued.secret, **extra}
            )
        )
    else:
        typer.echo(f"{kind} {issued.name!r} ({issued.id})")
        for k, v in extra.items():
            typer.echo(f"  {k}: {v}")
        typer.echo(f"  {secret_name}: {issued.secret}")
        typer.echo("  (shown once: it is stored only as a hash)")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@agency_app.command("create")
def agency_create(
    name: Annotated[str, typer.Option(help="The agency's name, unique.")],
    type_: Annotated[AgencyType, typer.Option("--type", help="Kind of agency.")],
    as_json: JsonFlag = False,
) -> None:
    """Create an agency and print its first API key."""
    try:
        issued = _identity().create_agency(name.strip(), type_)
    except AgencyExists as exc:
        _fail(str(exc))
        return
    _emit(issued, "agency", "api_key", as_json, type=type_.value)


@agency_app.command("key")
def agency_key(
    name: Annotated[str, typer.Option(help="The agency's name.")],
    as_json: JsonFlag = False,
) -> None:
    """Issue a further API key for an agency (to rotate keys)."""
    try:
        issued = _identity().issue_agency_key(name.strip())
    except AgencyNotFound as exc:
        _fail(str(exc))
        return
    _emit(issued, "agency", "api_key", as_json)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Option(help="The person's name.")],
    role: Annotated[Role, typer.Option(help="What they do in the MSET process.")],
    agency: Annotated[str, typer.Option(help="Name of the agency they work for.")],
    as_json: JsonFlag = False,
) -> None:
    """Create a staff user and print their bearer token."""
    try:
        issued = _identity().create_user(name.strip(), role, agency.strip())
    except AgencyNotFound as exc:
        _fail(str(exc))
        return
    _emit(issued, "user", "token", as_json, role=role.value, agency=agency.strip())


if __name__ == "__main__":
    app()
