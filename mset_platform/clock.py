"""The time now, as every service's clock: timezone-aware UTC. Services take a clock
(``Clock``) so that tests can set the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
