"""Meeting service API (Pre-MSET and MSET panels). Foundation only: health so far; the
meetings themselves are issue 5."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from mset_contract.edge import install_error_handlers
from services.meeting.settings import MeetingSettings


def create_app(settings: MeetingSettings) -> FastAPI:
    app = FastAPI(title="MSET Flow — meetings", version="1")
    install_error_handlers(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    settings = MeetingSettings()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")


if __name__ == "__main__":
    main()
