"""Notifications service API (escalation inbox, webhooks, e-mail). Foundation only: health
so far; the event consumers are issue 6."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from mset_contract.edge import install_error_handlers
from services.notifications.settings import NotificationsSettings


def create_app(settings: NotificationsSettings) -> FastAPI:
    app = FastAPI(title="MSET Flow — notifications", version="1")
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    settings = NotificationsSettings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
