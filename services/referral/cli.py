"""``mset``: the admin command line. Creates agencies (API keys) and staff users (tokens),
rotates and revokes them, and disables users.

Secrets are printed once and stored only as hashes: copy them when shown. Staff tokens
expire (``MSET_REFERRAL_STAFF_TOKEN_TTL_HOURS``, 12 by default): ``mset user token`` issues
the next one.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from mset_contract.vocab import AgencyType, Role
from services.referral.domain import (
    AgencyExists,
    AgencyNotFound,
    CredentialNotFound,
    InvalidAuthority,
    UserDisabled,
    UserNotFound,
)
from services.referral.identity import CredentialInfo, Identity, Issued
from services.referral.import_cli import import_command
from services.referral.migrate import MIGRATIONS
from services.referral.report_cli import report_app
from services.referral.settings import AdminSettings
from services.referral.store import Store

app = typer.Typer(help="MSET Flow administration.", no_args_is_help=True)
agency_app = typer.Typer(help="Partner agencies and their API keys.", no_args_is_help=True)
user_app = typer.Typer(help="Staff users and their bearer tokens.", no_args_is_help=True)
key_app = typer.Typer(help="API keys and staff tokens: list and revoke.", no_args_is_help=True)
app.add_typer(agency_app, name="agency")
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.command("import")(import_command)
app.add_typer(report_app, name="report")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
Authorities = Annotated[
    list[str],
    typer.Option(
        "--authority",
        help="A local authority the user serves (repeat for each); authority-level "
        "escalations (its chair, coordinator, manager) reach only users who serve it.",
    ),
]
RhiProviderFor = Annotated[
    list[str],
    typer.Option(
        "--rhi-provider-for",
        help="A local authority that commissions this agency for Return Home Interviews "
        "(repeat for each): its managers hear of that authority's missed RHI deadlines.",
    ),
]


def _identity() -> Identity:
    settings = AdminSettings()
    return Identity(
        Store(MIGRATIONS.open(settings.database_url)), staff_token_ttl=settings.staff_token_ttl
    )


def _emit(
    issued: Issued, kind: str, secret_name: str, as_json: bool, **extra: str | list[str]
) -> None:
    own: dict[str, str] = {}
    if issued.credential_id is not None:
        own[f"{secret_name}_id"] = str(issued.credential_id)
    if issued.expires_at is not None:
        own["expires_at"] = issued.expires_at.isoformat()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": str(issued.id),
                    "name": issued.name,
                    secret_name: issued.secret,
                    **own,
                    **extra,
                }
            )
        )
    else:
        typer.echo(f"{kind} {issued.name!r} ({issued.id})")
        for k, v in {**extra, **own}.items():
            typer.echo(f"  {k}: {', '.join(v) if isinstance(v, list) else v}")
        typer.echo(f"  {secret_name}: {issued.secret}")
        typer.echo("  (shown once: it is stored only as a hash)")


def _credential_json(c: CredentialInfo, now: datetime) -> dict[str, str | bool | None]:
    return {
        "id": str(c.id),
        "kind": c.kind,
        "created_at": c.created_at.isoformat(),
        "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        "live": c.live(now),
    }


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@agency_app.command("create")
def agency_create(
    name: Annotated[str, typer.Option(help="The agency's name, unique.")],
    type_: Annotated[AgencyType, typer.Option("--type", help="Kind of agency.")],
    authority: Annotated[
        str | None,
        typer.Option(help="The local authority the agency belongs to, where one."),
    ] = None,
    rhi_provider_for: RhiProviderFor | None = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an agency and print its first API key."""
    try:
        issued = _identity().create_agency(
            name.strip(), type_, authority=authority, rhi_provider_for=rhi_provider_for or []
        )
    except (AgencyExists, InvalidAuthority) as exc:
        _fail(str(exc))
        return
    extra: dict[str, str | list[str]] = {"type": type_.value}
    if authority:
        extra["authority"] = authority
    if rhi_provider_for:
        extra["rhi_provider_for"] = rhi_provider_for
    _emit(issued, "agency", "api_key", as_json, **extra)


@agency_app.command("commission")
def agency_commission(
    name: Annotated[str, typer.Option(help="The agency's name.")],
    rhi_provider_for: RhiProviderFor,
    as_json: JsonFlag = False,
) -> None:
    """Record the authorities that commission an agency for Return Home Interviews."""
    try:
        now = _identity().commission_rhi(name.strip(), rhi_provider_for)
    except (AgencyNotFound, InvalidAuthority) as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps({"name": name.strip(), "rhi_provider_for": now}))
    else:
        typer.echo(f"agency {name.strip()!r} is the RHI provider for: {', '.join(now)}")


@agency_app.command("key")
def agency_key(
    name: Annotated[str, typer.Option(help="The agency's name.")],
    retire_others: Annotated[
        bool,
        typer.Option(
            "--retire-others",
            help="Revoke every earlier key of the agency at once (after a leak, or once the "
            "partner runs on the new key). Without it the old keys keep working until "
            "`mset key revoke`.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Issue a further API key for an agency (to rotate keys)."""
    try:
        issued = _identity().issue_agency_key(name.strip(), retire_others=retire_others)
    except AgencyNotFound as exc:
        _fail(str(exc))
        return
    _emit(issued, "agency", "api_key", as_json, retired_others=str(retire_others).lower())


@key_app.command("list")
def key_list(
    agency: Annotated[str | None, typer.Option(help="List this agency's API keys.")] = None,
    user: Annotated[
        uuid.UUID | None, typer.Option(help="List this user's tokens (the user's id).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List an agency's API keys or a user's tokens (ids and dates, never the secrets)."""
    if (agency is None) == (user is None):
        _fail("give --agency or --user (one of them)")
        return
    try:
        if agency is not None:
            found = _identity().credentials(agency.strip())
        else:
            assert user is not None
            found = _identity().user_credentials(user)
    except (AgencyNotFound, UserNotFound) as exc:
        _fail(str(exc))
        return
    now = datetime.now(UTC)
    rows = [_credential_json(c, now) for c in found]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        state = "live" if r["live"] else ("revoked" if r["revoked_at"] else "expired")
        until = f", expires {r['expires_at']}" if r["expires_at"] else ""
        typer.echo(f"{r['kind']} {r['id']}  created {r['created_at']}{until}  {state}")


@key_app.command("revoke")
def key_revoke(
    id_: Annotated[
        uuid.UUID | None,
        typer.Option(
            "--id", help="The key's or token's id (printed when issued; `mset key list`)."
        ),
    ] = None,
    agency: Annotated[
        str | None,
        typer.Option(help="Revoke every API key of this agency (its system is cut off)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API key or a staff token: refused everywhere within the services' cache
    time (30 s)."""
    if (id_ is None) == (agency is None):
        _fail("give --id (one key or token) or --agency (all its keys)")
        return
    try:
        if id_ is not None:
            info = _identity().revoke(id_)
            out: dict[str, str | int | bool | None] = {
                "id": str(info.id),
                "kind": info.kind,
                "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
            }
            text = f"{info.kind} {info.id} revoked"
        else:
            assert agency is not None
            count = _identity().revoke_agency_keys(agency.strip())
            out = {"agency": agency.strip(), "revoked": count}
            text = f"{count} API key(s) of {agency.strip()!r} revoked"
    except (CredentialNotFound, AgencyNotFound) as exc:
        _fail(str(exc))
        return
    typer.echo(json.dumps(out) if as_json else text)


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Option(help="The person's name.")],
    role: Annotated[Role, typer.Option(help="What they do in the MSET process.")],
    agency: Annotated[str, typer.Option(help="Name of the agency they work for.")],
    authority: Authorities | None = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a staff user and print their bearer token."""
    authorities = authority or []
    try:
        issued = _identity().create_user(name.strip(), role, agency.strip(), authorities)
    except (AgencyNotFound, InvalidAuthority) as exc:
        _fail(str(exc))
        return
    _emit(
        issued,
        "user",
        "token",
        as_json,
        role=role.value,
        agency=agency.strip(),
        authorities=authorities,
    )


@user_app.command("token")
def user_token(
    id_: Annotated[uuid.UUID, typer.Option("--id", help="The user's id (printed at creation).")],
    as_json: JsonFlag = False,
) -> None:
    """Issue a staff user's next token (tokens expire); their earlier tokens are revoked."""
    try:
        issued = _identity().issue_user_token(id_)
    except (UserNotFound, UserDisabled) as exc:
        _fail(str(exc))
        return
    _emit(issued, "user", "token", as_json)


@user_app.command("disable")
def user_disable(
    id_: Annotated[uuid.UUID, typer.Option("--id", help="The user's id (printed at creation).")],
    as_json: JsonFlag = False,
) -> None:
    """Disable a staff user (they left, or their token leaked): every token of theirs is
    refused from now on, and no new one can be issued."""
    try:
        revoked = _identity().disable_user(id_)
    except UserNotFound as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps({"id": str(id_), "disabled": True, "tokens_revoked": revoked}))
    else:
        typer.echo(f"user {id_} disabled ({revoked} token(s) revoked)")


@user_app.command("serve")
def user_serve(
    id_: Annotated[uuid.UUID, typer.Option("--id", help="The user's id (printed at creation).")],
    authority: Authorities,
    as_json: JsonFlag = False,
) -> None:
    """Record further local authorities an existing user serves."""
    try:
        now = _identity().serve(id_, authority)
    except (UserNotFound, InvalidAuthority) as exc:
        _fail(str(exc))
        return
    if as_json:
        typer.echo(json.dumps({"id": str(id_), "authorities": now}))
    else:
        typer.echo(f"user {id_} serves: {', '.join(now)}")


if __name__ == "__main__":
    app()
