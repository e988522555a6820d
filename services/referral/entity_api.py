"""Persons of concern and locations on the referral API (HTTP only: the work is in
entity_desk.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from mset_contract.entities import (
    ActionTargetsCheck,
    ChildEntities,
    EntityGraph,
    EntityMatchAction,
    EntityMatchDecision,
    EntityMatchPage,
    EntityMatchPublic,
    EntityShared,
    EntityShareRequest,
    EntityView,
    HotspotList,
)
from mset_contract.types import LocalAuthorityCode
from mset_platform.edge import Caller, ErrorBody, FieldError, error_response, error_responses
from services.referral.entity_desk import EntityDesk, EntityMatchConflict, PatternDesk


def desk(request: Request) -> EntityDesk:
    d: EntityDesk = request.app.state.entities
    return d


def pattern(request: Request) -> PatternDesk:
    d: PatternDesk = request.app.state.patterns
    return d


def install_entity_errors(app: FastAPI) -> None:
    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc), [FieldError(field="match_id", reason=str(exc))])

    app.add_exception_handler(EntityMatchConflict, conflict)


READ_ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(401, 403, 422),
    404: {"model": ErrorBody},
}


def add_entity_routes(app: FastAPI) -> None:
    write_errors = {**READ_ERRORS, **error_responses(409)}

    @app.get(
        "/v1/entities/{entity_id}",
        response_model=EntityView,
        responses=READ_ERRORS,
        tags=["entities"],
    )
    async def entity(request: Request, caller: Caller, entity_id: uuid.UUID) -> EntityView:
        """A person of concern or a location: every mention confirmed to be it, the
        children, cases, actions and authorities it touches, and its timeline. A mention in
        an authority that has not shared it with yours shows only that it exists. Each
        detail shown is recorded."""
        return await desk(request).view(caller, entity_id)

    @app.get(
        "/v1/entity-matches/candidates",
        response_model=EntityMatchPage,
        responses=error_responses(401, 403, 422),
        tags=["entities"],
    )
    async def entity_candidates(
        request: Request,
        caller: Caller,
        after: Annotated[
            uuid.UUID | None, Query(description="The page after this match (next_cursor).")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> EntityMatchPage:
        """The coordinator's review queue: two mentions that may be one person or place,
        with what they share (never the values) and each side's detail where you may see
        it. Each detail shown is recorded."""
        return await desk(request).candidates(caller, after, limit)

    @app.get(
        "/v1/referrals/{referral_id}/entities",
        response_model=ChildEntities,
        responses=READ_ERRORS,
        tags=["entities"],
    )
    async def child_entities(
        request: Request, caller: Caller, referral_id: uuid.UUID
    ) -> ChildEntities:
        """The people and places of concern the child's tools name, and the other children
        linked through each: by case where you may see them, counted by authority where
        their authority has not shared."""
        return await pattern(request).child(caller, referral_id)

    @app.get(
        "/v1/entities/{entity_id}/graph",
        response_model=EntityGraph,
        responses=READ_ERRORS,
        tags=["entities"],
    )
    async def entity_graph(request: Request, caller: Caller, entity_id: uuid.UUID) -> EntityGraph:
        """The entity's network as nodes (children's cases, people, places) and edges (a
        tool's mention, a plan action). A child you may not see is a node naming only its
        authority."""
        return await pattern(request).graph(caller, entity_id)

    @app.get(
        "/v1/entities/{entity_id}/network.svg",
        response_class=Response,
        responses={**READ_ERRORS, 200: {"content": {"image/svg+xml": {}}}},
        tags=["entities"],
    )
    async def entity_network(request: Request, caller: Caller, entity_id: uuid.UUID) -> Response:
        """The entity's network drawn as SVG, with a title and a description in words."""
        svg = await pattern(request).network_svg(caller, entity_id)
        return Response(svg, media_type="image/svg+xml")

    @app.get(
        "/v1/hotspots",
        response_model=HotspotList,
        responses=error_responses(401, 403, 422),
        tags=["entities"],
    )
    async def hotspots(
        request: Request,
        caller: Caller,
        authority: Annotated[
            LocalAuthorityCode, Query(description="A local authority of the partnership.")
        ],
        since: Annotated[datetime | None, Query(description="Default: 90 days ago.")] = None,
        until: Annotated[datetime | None, Query(description="Default: now.")] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> HotspotList:
        """Locations with a mention in the authority, ranked by the number of children
        linked to them in the period (anywhere in the partnership)."""
        end = until or datetime.now(UTC)
        start = since or end - timedelta(days=90)
        return await pattern(request).hotspots(caller, authority, start, end, limit)

    @app.post(
        "/v1/entities/{entity_id}/share",
        response_model=EntityShared,
        responses=READ_ERRORS,
        tags=["entities"],
    )
    async def share_entity(
        request: Request, caller: Caller, entity_id: uuid.UUID, body: EntityShareRequest
    ) -> EntityShared:
        """Share your authorities' mentions of this person or place with another authority:
        its staff then see their detail (until now, only that they exist). Recorded in the
        information-sharing ledger with the reason."""
        return await desk(request).share(caller, entity_id, body)

    @app.post(
        "/v1/entity-targets/check",
        status_code=204,
        response_class=Response,
        responses=error_responses(401, 403, 422),
        tags=["entities"],
    )
    async def check_entity_targets(
        request: Request, caller: Caller, body: ActionTargetsCheck
    ) -> Response:
        """Check a review's actions before it is sent (chair): each entity an action names is
        one you may see, of the kind its target aims at (a perpetrator is a person, a
        location a place). 204 when they are; else 422 naming ``actions.<n>.entity_id``.
        Nothing is recorded and nothing about an entity is shown. The meeting API asks this,
        with the chair's credential, before it sends a decision recorded in a meeting."""
        await desk(request).check_targets(caller, body)
        return Response(status_code=204)

    for action, verb, summary in (
        (EntityMatchAction.confirmed, "confirm", "Confirm that both are one person or place."),
        (EntityMatchAction.rejected, "reject", "Reject a suggested match: two different ones."),
        (EntityMatchAction.undone, "undo", "Undo a confirmed match."),
    ):
        _decision_route(app, action, verb, summary, write_errors)


def _decision_route(
    app: FastAPI,
    action: EntityMatchAction,
    verb: str,
    summary: str,
    errors: dict[int | str, dict[str, Any]],
) -> None:
    async def decide(
        request: Request, caller: Caller, match_id: uuid.UUID, decision: EntityMatchDecision
    ) -> EntityMatchPublic:
        return await desk(request).decide(caller, match_id, action, decision)

    decide.__doc__ = summary + " Who and why are kept with the match."
    app.post(
        f"/v1/entity-matches/{{match_id}}/{verb}",
        response_model=EntityMatchPublic,
        responses=errors,
        tags=["entities"],
        name=f"entity_match_{verb}",
    )(decide)
