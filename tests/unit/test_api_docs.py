"""Every service's API documentation works on an isolated network: the pages reference only
the service's own URLs, and those answer with the vendored assets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.meeting.api import create_app as meeting_app
from services.meeting.settings import MeetingSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.settings import NotificationsSettings
from services.referral.api import create_app as referral_app
from services.referral.settings import ReferralSettings
from services.triage.api import create_app as triage_app
from services.triage.settings import TriageSettings

APPS: dict[str, Callable[[], FastAPI]] = {
    "referral": lambda: referral_app(ReferralSettings()),
    "triage": lambda: triage_app(TriageSettings()),
    "meeting": lambda: meeting_app(MeetingSettings()),
    "notifications": lambda: notifications_app(NotificationsSettings()),
}
URL = re.compile(r"""(?:src|href|url|spec-url)\s*[=:]\s*['"]([^'"]+)['"]""")


def references(html: str) -> list[str]:
    return URL.findall(html)


@pytest.mark.parametrize("service", list(APPS))
@pytest.mark.parametrize(
    ("page", "needs"),
    [("/docs", {"swagger-ui-bundle.js", "swagger-ui.css"}), ("/redoc", {"redoc.standalone.js"})],
)
async def test_docs_pages_load_only_local_assets(service: str, page: str, needs: set[str]) -> None:
    app = APPS[service]()
    # No lifespan: the pages need no database or Temporal.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        resp = await http.get(page)
        assert resp.status_code == 200
        html = resp.text
        assert "cdn." not in html and "googleapis" not in html and "jsdelivr" not in html
        urls = references(html)
        assert {u.rsplit("/", 1)[-1] for u in urls} >= needs, urls
        for url in urls:
            assert url.startswith("/"), f"{page} of {service} references {url}"
            asset = await http.get(url)
            assert asset.status_code == 200, url
            kind: Any = asset.headers["content-type"]
            if url.endswith(".js"):
                assert "javascript" in kind, (url, kind)
                assert len(asset.content) > 100_000  # the real bundle, not a stub
            elif url.endswith(".css"):
                assert "text/css" in kind
