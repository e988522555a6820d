"""Reading a whole list from a synchronous client (the fault tier, the benches): every page,
as ``mset_platform.paging.every_item`` reads them for async callers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from mset_platform.paging import MAX_LIMIT


def every_item(
    http: httpx.Client,
    url: str,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
) -> list[Any]:
    """Every item of the list at ``url``; raises ``httpx.HTTPStatusError`` on a failure."""
    items: list[Any] = []
    query: dict[str, str | int] = {**(params or {}), "limit": MAX_LIMIT}
    seen: set[str] = set()
    while True:
        resp = http.get(url, params=query, headers=headers)
        resp.raise_for_status()
        body = resp.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        if cursor in seen:
            raise RuntimeError(f"{url} answered the cursor {cursor!r} twice")
        seen.add(cursor)
        query["cursor"] = cursor
