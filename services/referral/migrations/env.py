"""Alembic environment for the referral service's tables (run programmatically)."""

from mset_platform.migrations import run_env
from services.referral.store import Base

run_env("referral", Base.metadata)
