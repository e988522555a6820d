"""Alembic environment for the notifications service's tables (run programmatically)."""

from mset_platform.migrations import run_env
from services.notifications.store import Base

run_env("notifications", Base.metadata)
