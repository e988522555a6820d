"""Bring the meeting service's tables to the latest migration (one lock per database: see
``mset_platform.migrations``)."""

from __future__ import annotations

from mset_platform.migrations import Migrations

MIGRATIONS = Migrations("meeting", "services.meeting:migrations")
upgrade = MIGRATIONS.upgrade


def main() -> None:
    MIGRATIONS.main("MSET_MEETING_")


if __name__ == "__main__":
    main()
