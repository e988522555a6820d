"""Alembic environment for the meeting service's tables (run programmatically)."""

from mset_platform.migrations import run_env
from services.meeting.store import Base

run_env("meeting", Base.metadata)
