"""Notifications API: the escalation inbox for staff and webhook subscriptions for partner
systems. HTTP only: the work is in inbox.py and subscriptions.py; the event consumers run in
the worker process (worker.py)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from fastapi import Body, Depends, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from mset_contract.auth import Introspector, Principal
from mset_contract.edge import (
    BodyLimit,
    ErrorBody,
    FieldError,
    RequireJson,
    Resolver,
    error_response,
    install_error_handlers,
    principal_dependency,
)
from mset_contract.events import EVENT_TYPES
from services.notifications.domain import (
    AlreadyActioned,
    InboxItemNotFound,
    InvalidSubscription,
    PartnerSystemsOnly,
    StaffOnly,
    SubscriptionNotFound,
    TooManySubscriptions,
)
from services.notifications.inbox import Inbox
from services.notifications.migrate import upgrade
from services.notifications.schemas import (
    ActionedCreate,
    EventTypes,
    InboxItemPublic,
    InboxPage,
    InboxState,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Store, make_engine
from services.notifications.subscriptions import Subscriptions

log = logging.getLogger("mset.notifications")

current_principal = principal_dependency(lambda request: request.app.state.resolve)
Caller = Annotated[Principal, Depends(current_principal)]


def create_app(settings: NotificationsSettings, resolver: Resolver | None = None) -> FastAPI:
    """``resolver`` turns a credential into a principal; by default the referral service's
    introspection endpoint answers (tests may pass their own)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        if settings.auto_migrate:
            await run_in_threadpool(upgrade, engine)
        store = Store(engine)
        app.state.store = store
        app.state.inbox = Inbox(store)
        app.state.subscriptions = Subscriptions(store, settings)
        introspector = None
        if resolver is None:
            introspector = Introspector(
                settings.referral_url, ttl_seconds=settings.introspect_ttl_seconds
            )
            app.state.resolve = introspector.principal
        else:
            app.state.resolve = resolver
        yield
        if introspector is not None:
            await introspector.aclose()
        engine.dispose()

    app = FastAPI(
        title="MSET Flow — notifications",
        version="1",
        description="The escalation inbox for managers, chairs and coordinators (a staff "
        "Bearer token), and signed webhooks for partner systems (the agency's `X-API-Key`).",
        lifespan=lifespan,
    )
    app.add_middleware(RequireJson)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    _install_domain_errors(app)
    errors: dict[int | str, dict[str, Any]] = {
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
    }
    not_found: dict[int | str, dict[str, Any]] = {**errors, 404: {"model": ErrorBody}}

    @app.get("/healthz", tags=["ops"])
    async def healthz(request: Request) -> dict[str, str]:
        def ping() -> None:
            with request.app.state.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        await run_in_threadpool(ping)
        return {"status": "ok"}

    # Inbox --------------------------------------------------------------------------------

    @app.get("/v1/inbox", response_model=InboxPage, responses=errors, tags=["inbox"])
    async def list_inbox(
        request: Request,
        caller: Caller,
        state: InboxState = "open",
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> InboxPage:
        """Escalations for your role (and agency), newest first. `open`: not yet actioned."""
        return await run_in_threadpool(request.app.state.inbox.list, caller, state, limit)

    @app.get(
        "/v1/inbox/{item_id}", response_model=InboxItemPublic, responses=not_found, tags=["inbox"]
    )
    async def get_item(request: Request, caller: Caller, item_id: uuid.UUID) -> InboxItemPublic:
        """One inbox item (the link in an escalation e-mail)."""
        return await run_in_threadpool(request.app.state.inbox.get, caller, item_id)

    @app.post(
        "/v1/inbox/{item_id}/acknowledge",
        response_model=InboxItemPublic,
        responses=not_found,
        tags=["inbox"],
    )
    async def acknowledge(request: Request, caller: Caller, item_id: uuid.UUID) -> InboxItemPublic:
        """Say you have seen it: stops it going further up the line. Repeats are harmless."""
        return await run_in_threadpool(request.app.state.inbox.acknowledge, caller, item_id)

    @app.post(
        "/v1/inbox/{item_id}/actioned",
        response_model=InboxItemPublic,
        responses={**not_found, 409: {"model": ErrorBody}},
        tags=["inbox"],
    )
    async def actioned(
        request: Request,
        caller: Caller,
        item_id: uuid.UUID,
        body: Annotated[
            ActionedCreate,
            Body(openapi_examples={"note": {"value": {"note": "Strategy meeting booked."}}}),
        ],
    ) -> InboxItemPublic:
        """Record what was done (the note stays in this service)."""
        return await run_in_threadpool(request.app.state.inbox.actioned, caller, item_id, body.note)

    # Webhooks -----------------------------------------------------------------------------

    @app.get("/v1/event-types", response_model=EventTypes, tags=["webhooks"])
    async def event_types() -> EventTypes:
        """The event types a webhook may subscribe to."""
        return EventTypes(event_types=sorted(EVENT_TYPES))

    @app.post(
        "/v1/webhooks",
        status_code=201,
        response_model=WebhookCreated,
        responses={**errors, 409: {"model": ErrorBody}},
        tags=["webhooks"],
    )
    async def create_webhook(
        request: Request, caller: Caller, body: WebhookCreate
    ) -> WebhookCreated:
        """Subscribe a URL to event types of your own referrals. The response holds the
        signing secret, shown this once."""
        return await run_in_threadpool(request.app.state.subscriptions.create, caller, body)

    @app.get("/v1/webhooks", response_model=WebhookList, responses=errors, tags=["webhooks"])
    async def list_webhooks(request: Request, caller: Caller) -> WebhookList:
        """Your subscriptions, their state (active or parked) and recent deliveries."""
        return await run_in_threadpool(request.app.state.subscriptions.list, caller)

    @app.get(
        "/v1/webhooks/{sub_id}",
        response_model=WebhookPublic,
        responses=not_found,
        tags=["webhooks"],
    )
    async def get_webhook(request: Request, caller: Caller, sub_id: uuid.UUID) -> WebhookPublic:
        """One subscription with its delivery ledger: each delivery and each attempt."""
        return await run_in_threadpool(request.app.state.subscriptions.get, caller, sub_id)

    @app.post(
        "/v1/webhooks/{sub_id}/resume",
        response_model=WebhookPublic,
        responses=not_found,
        tags=["webhooks"],
    )
    async def resume_webhook(request: Request, caller: Caller, sub_id: uuid.UUID) -> WebhookPublic:
        """Un-park a subscription: its held deliveries are sent again."""
        return await run_in_threadpool(request.app.state.subscriptions.resume, caller, sub_id)

    @app.delete("/v1/webhooks/{sub_id}", status_code=204, responses=not_found, tags=["webhooks"])
    async def delete_webhook(request: Request, caller: Caller, sub_id: uuid.UUID) -> Response:
        """Stop deliveries to this subscription."""
        await run_in_threadpool(request.app.state.subscriptions.delete, caller, sub_id)
        return Response(status_code=204)

    return app


def _install_domain_errors(app: FastAPI) -> None:
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, str(exc))

    async def forbidden(_: Request, exc: Exception) -> JSONResponse:
        return error_response(403, str(exc))

    async def conflict(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc))

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidSubscription)
        return error_response(
            422,
            f"the request is not valid: {exc.field}: {exc.reason}",
            [FieldError(field=exc.field, reason=exc.reason)],
        )

    app.add_exception_handler(InboxItemNotFound, not_found)
    app.add_exception_handler(SubscriptionNotFound, not_found)
    app.add_exception_handler(StaffOnly, forbidden)
    app.add_exception_handler(PartnerSystemsOnly, forbidden)
    app.add_exception_handler(AlreadyActioned, conflict)
    app.add_exception_handler(TooManySubscriptions, conflict)
    app.add_exception_handler(InvalidSubscription, invalid)


def main() -> None:
    settings = NotificationsSettings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
