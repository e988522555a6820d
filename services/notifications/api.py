"""Notifications API: the escalation inbox for staff and webhook subscriptions for partner
systems. HTTP only: the work is in inbox.py and subscriptions.py; the event consumers run in
the worker process (worker.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Body, FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from mset_contract.events import EVENT_TYPES
from mset_contract.operations import NotificationAggregates
from mset_platform.case_records import add_case_record_route
from mset_platform.edge import (
    Caller,
    add_healthz,
    answer,
    answer_invalid_field,
    error_responses,
    serve_main,
    service_app,
)
from mset_platform.egress import Lookup, system_lookup
from mset_platform.identity import Resolver, resolving, with_service_token
from mset_platform.paging import PageRequest, page_query
from services.notifications.domain import (
    AlreadyActioned,
    InboxItemNotFound,
    InvalidSubscription,
    OpsOnly,
    PartnerSystemsOnly,
    StaffOnly,
    SubscriptionNotFound,
    TooManySubscriptions,
)
from services.notifications.inbox import Inbox
from services.notifications.metrics import notifications_gauges
from services.notifications.migrate import MIGRATIONS
from services.notifications.operations import OperationCounts
from services.notifications.policy import CASE_RECORD
from services.notifications.schemas import (
    ActionedCreate,
    EventTypes,
    InboxItemPublic,
    InboxPage,
    InboxState,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookPage,
    WebhookPublic,
    WebhookSecretRotate,
    WebhookSecretRotated,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.store import (
    DELIVERY_ORDER,
    INBOX_ORDER,
    SUBSCRIPTION_ORDER,
    Store,
)
from services.notifications.subscriptions import Subscriptions


def create_app(
    settings: NotificationsSettings,
    resolver: Resolver | None = None,
    lookup: Lookup = system_lookup,
) -> FastAPI:
    """``resolver`` turns a credential into a principal; by default the referral service's
    introspection endpoint answers (tests may pass their own). ``lookup`` resolves a webhook
    URL's host name (the system resolver; tests play DNS with it)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await run_in_threadpool(
            MIGRATIONS.open, settings.database_url, settings.auto_migrate
        )
        store = Store(engine)
        app.state.store = store
        app.state.inbox = Inbox(store)
        app.state.subscriptions = Subscriptions(store, settings, lookup)
        app.state.operations = OperationCounts(store, settings.outbox_consumer_groups)
        gauges = notifications_gauges(store, settings.outbox_consumer_groups)
        gauges.register(app.state.metrics)
        try:
            async with resolving(resolver, settings) as app.state.resolve:
                # The referral service asks for a case's record with the services' token.
                app.state.resolve = with_service_token(
                    settings.service_token.get_secret_value(), app.state.resolve
                )
                yield
        finally:
            app.state.metrics.unregister(gauges)
        engine.dispose()

    app = service_app(
        title="MSET Flow — notifications",
        description="The escalation inbox for managers, chairs and coordinators (a staff "
        "Bearer token), and signed webhooks for partner systems (the agency's `X-API-Key`).",
        lifespan=lifespan,
        max_body_bytes=settings.max_body_bytes,
    )
    _install_domain_errors(app)
    add_case_record_route(
        app, lambda request, case_id: request.app.state.store.case_record(case_id), CASE_RECORD
    )
    errors = error_responses(401, 403, 422)
    not_found = error_responses(401, 403, 404, 422)

    add_healthz(app, lambda request: request.app.state.store.engine)

    # Inbox --------------------------------------------------------------------------------

    @app.get(
        "/v1/aggregates/operations",
        response_model=NotificationAggregates,
        responses=error_responses(401, 403),
        tags=["operations"],
    )
    async def operation_counts(request: Request, caller: Caller) -> NotificationAggregates:
        """Counts for operations (the ops role): unacknowledged inbox items, breaches,
        dead letters, consumer lag, parked webhooks."""
        counts: OperationCounts = request.app.state.operations
        return await run_in_threadpool(counts.aggregates, caller)

    @app.get("/v1/inbox", response_model=InboxPage, responses=errors, tags=["inbox"])
    async def list_inbox(
        request: Request,
        caller: Caller,
        page: Annotated[PageRequest, page_query(INBOX_ORDER)],
        state: InboxState = "open",
    ) -> InboxPage:
        """Escalations for your role (and agency), newest first, a page at a time. `open`:
        not yet actioned."""
        return await run_in_threadpool(request.app.state.inbox.list, caller, state, page)

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
        responses={**not_found, **error_responses(409)},
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
        responses={**errors, **error_responses(409)},
        tags=["webhooks"],
    )
    async def create_webhook(
        request: Request, caller: Caller, body: WebhookCreate
    ) -> WebhookCreated:
        """Subscribe a URL to event types of your own referrals. The response holds the
        signing secret, shown this once."""
        return await run_in_threadpool(request.app.state.subscriptions.create, caller, body)

    @app.get("/v1/webhooks", response_model=WebhookPage, responses=errors, tags=["webhooks"])
    async def list_webhooks(
        request: Request,
        caller: Caller,
        page: Annotated[PageRequest, page_query(SUBSCRIPTION_ORDER)],
    ) -> WebhookPage:
        """Your subscriptions, oldest first: their state (active or parked) and latest
        deliveries."""
        return await run_in_threadpool(request.app.state.subscriptions.list, caller, page)

    @app.get(
        "/v1/webhooks/{sub_id}",
        response_model=WebhookPublic,
        responses=not_found,
        tags=["webhooks"],
    )
    async def get_webhook(request: Request, caller: Caller, sub_id: uuid.UUID) -> WebhookPublic:
        """One subscription with its latest deliveries and each one's attempts."""
        return await run_in_threadpool(request.app.state.subscriptions.get, caller, sub_id)

    @app.get(
        "/v1/webhooks/{sub_id}/deliveries",
        response_model=WebhookDeliveryPage,
        responses=not_found,
        tags=["webhooks"],
    )
    async def list_deliveries(
        request: Request,
        caller: Caller,
        sub_id: uuid.UUID,
        page: Annotated[PageRequest, page_query(DELIVERY_ORDER)],
    ) -> WebhookDeliveryPage:
        """The subscription's delivery ledger, newest first: each delivery and each attempt."""
        return await run_in_threadpool(
            request.app.state.subscriptions.deliveries, caller, sub_id, page
        )

    @app.post(
        "/v1/webhooks/{sub_id}/resume",
        response_model=WebhookPublic,
        responses=not_found,
        tags=["webhooks"],
    )
    async def resume_webhook(request: Request, caller: Caller, sub_id: uuid.UUID) -> WebhookPublic:
        """Un-park a subscription: its held deliveries are sent again."""
        return await run_in_threadpool(request.app.state.subscriptions.resume, caller, sub_id)

    @app.post(
        "/v1/webhooks/{sub_id}/rotate-secret",
        response_model=WebhookSecretRotated,
        responses=not_found,
        tags=["webhooks"],
    )
    async def rotate_webhook_secret(
        request: Request,
        caller: Caller,
        sub_id: uuid.UUID,
        body: Annotated[
            WebhookSecretRotate,
            Body(
                openapi_examples={
                    "overlap": {"value": {"keep_previous_seconds": 86400}},
                    "leaked": {"value": {"keep_previous_seconds": 0}},
                }
            ),
        ],
    ) -> WebhookSecretRotated:
        """A new signing secret, shown this once. Deliveries carry a second signature with
        the previous secret for `keep_previous_seconds` (default 24 hours; 0 when it leaked)."""
        return await run_in_threadpool(
            request.app.state.subscriptions.rotate_secret, caller, sub_id, body
        )

    @app.delete("/v1/webhooks/{sub_id}", status_code=204, responses=not_found, tags=["webhooks"])
    async def delete_webhook(request: Request, caller: Caller, sub_id: uuid.UUID) -> Response:
        """Stop deliveries to this subscription."""
        await run_in_threadpool(request.app.state.subscriptions.delete, caller, sub_id)
        return Response(status_code=204)

    return app


def _install_domain_errors(app: FastAPI) -> None:
    answer(app, 404, InboxItemNotFound, SubscriptionNotFound)
    answer(app, 403, StaffOnly, PartnerSystemsOnly, OpsOnly)
    answer(app, 409, AlreadyActioned, TooManySubscriptions)
    answer_invalid_field(app, InvalidSubscription)


def main() -> None:
    serve_main("notifications", NotificationsSettings, create_app)


if __name__ == "__main__":
    main()
