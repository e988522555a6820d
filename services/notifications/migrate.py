"""Bring the notifications service's tables to the latest migration (one lock per database: see
``mset_platform.migrations``)."""

from __future__ import annotations

from mset_platform.migrations import Migrations

MIGRATIONS = Migrations("notifications", "services.notifications:migrations")
upgrade = MIGRATIONS.upgrade


def main() -> None:
    MIGRATIONS.main("MSET_NOTIFICATIONS_")


if __name__ == "__main__":
    main()
