"""The child's identity, the same-child review queue and a child's linked history on the
referral API (HTTP only: the work is in child_links.py)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from mset_contract.identity import (
    ChildHistory,
    ChildIdentityPublic,
    ChildLinkPage,
    ChildLinkPublic,
    LinkAction,
    LinkDecision,
)
from mset_platform.edge import Caller, ErrorBody, FieldError, error_response, error_responses
from services.referral.child_links import ChildLinks, LinkStateConflict


def links(request: Request) -> ChildLinks:
    desk: ChildLinks = request.app.state.child_links
    return desk


def install_child_link_errors(app: FastAPI) -> None:
    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc), [FieldError(field="link_id", reason=str(exc))])

    app.add_exception_handler(LinkStateConflict, conflict)


def add_child_link_routes(app: FastAPI) -> None:
    read_errors = {**error_responses(401, 403, 422), 404: {"model": ErrorBody}}
    write_errors = {**read_errors, **error_responses(409)}

    @app.get(
        "/v1/referrals/{referral_id}/child",
        response_model=ChildIdentityPublic,
        responses=read_errors,
        tags=["children"],
    )
    async def child_identity(
        request: Request, caller: Caller, referral_id: uuid.UUID
    ) -> ChildIdentityPublic:
        """Who the tool says the child is: name, NHS number and postcode (held encrypted),
        for those who may read the referral. Each read is recorded."""
        return await links(request).identity(caller, referral_id)

    @app.get(
        "/v1/referrals/{referral_id}/child-history",
        response_model=ChildHistory,
        responses=read_errors,
        tags=["children"],
    )
    async def child_history(
        request: Request, caller: Caller, referral_id: uuid.UUID
    ) -> ChildHistory:
        """Every referral of the child's, whichever agency sent it: the case, its
        re-referrals, and the tools linked to it as the same child. Another authority's
        referral you may not read shows only that it exists."""
        return await links(request).history(caller, referral_id)

    @app.get(
        "/v1/child-links/candidates",
        response_model=ChildLinkPage,
        responses=error_responses(401, 403, 422),
        tags=["children"],
    )
    async def link_candidates(
        request: Request,
        caller: Caller,
        after: Annotated[
            uuid.UUID | None, Query(description="The page after this link (next_cursor).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> ChildLinkPage:
        """The coordinator's review queue: likely matches between a new tool and a child
        already known, with both identities, the score and how each field compares. Each
        read is recorded."""
        return await links(request).candidates(caller, after, limit)

    for action, verb, summary in (
        (LinkAction.confirmed, "confirm", "Confirm that both tools are about the same child."),
        (LinkAction.rejected, "reject", "Reject a candidate: two different children."),
        (LinkAction.unlinked, "unlink", "Undo a link (automatic or confirmed)."),
    ):
        _decision_route(app, action, verb, summary, write_errors)


def _decision_route(
    app: FastAPI,
    action: LinkAction,
    verb: str,
    summary: str,
    errors: dict[int | str, dict[str, Any]],
) -> None:
    async def decide(
        request: Request, caller: Caller, link_id: uuid.UUID, decision: LinkDecision
    ) -> ChildLinkPublic:
        return await links(request).decide(caller, link_id, action, decision)

    decide.__doc__ = summary + " Who and why are kept with the link."
    app.post(
        f"/v1/child-links/{{link_id}}/{verb}",
        response_model=ChildLinkPublic,
        responses=errors,
        tags=["children"],
        name=f"child_link_{verb}",
    )(decide)
