"""``mset report``: board reports from the command line (docs/board-pack.md).

    mset report board-pack --authority sunderland --since 2018-07-01 --until 2019-01-01 \\
        --out board-pack.pdf

asks the referral service's API for the board pack with the reader's own token (an analyst,
manager, DPO or the MSET coordinator: ``MSET_TOKEN``), so the same access rules and the same
records apply as to the route; it never reads the database itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer

report_app = typer.Typer(help="Board reports.", no_args_is_help=True)


@report_app.command("board-pack")
def board_pack(
    out: Annotated[Path, typer.Option(help="Where to write the PDF.")],
    authority: Annotated[
        str | None, typer.Option(help="One local authority (or --region).")
    ] = None,
    region: Annotated[
        bool, typer.Option("--region", help="Every authority of the partnership.")
    ] = False,
    since: Annotated[
        str | None, typer.Option(help="First instant of the period (ISO 8601; UTC if no zone).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End of the period, exclusive (ISO 8601).")
    ] = None,
    suppress: Annotated[
        bool, typer.Option("--suppress", help="For publication: small counts shown as [c].")
    ] = False,
    url: Annotated[
        str, typer.Option(envvar="MSET_REFERRAL_URL", help="The referral service.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str,
        typer.Option(
            envvar="MSET_TOKEN",
            prompt=True,
            hide_input=True,
            help="Your bearer token (analyst, manager, DPO or coordinator).",
        ),
    ] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pack.")] = 120.0,
) -> None:
    """Write the board pack PDF for a period, one authority or the region."""
    if (authority is None) == (not region):
        typer.echo("error: name one --authority, or --region", err=True)
        raise typer.Exit(code=2)
    params: dict[str, str] = {"region": "all"} if region else {"authority": str(authority)}
    if since:
        params["since"] = since
    if until:
        params["until"] = until
    if suppress:
        params["suppress"] = "true"
    try:
        resp = httpx.get(
            f"{url.rstrip('/')}/v1/reports/board-pack.pdf",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        typer.echo(f"error: the referral service at {url} did not answer: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if resp.status_code != 200:
        typer.echo(f"error: {resp.status_code}: {resp.text}", err=True)
        raise typer.Exit(code=1)
    out.write_bytes(resp.content)
    typer.echo(f"wrote {out} ({len(resp.content):,} bytes)")
