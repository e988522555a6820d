"""Retention's policy arithmetic, and that every table of every service is either erased by
child or named as holding nothing of a child's (so a new table cannot be forgotten)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from mset_platform.settings import RetentionSettings
from services.meeting import retention as meeting_retention
from services.meeting.store import Base as MeetingBase
from services.notifications import retention as notifications_retention
from services.notifications.store import Base as NotificationsBase
from services.referral import retention as referral_retention
from services.referral.retention import ChildRecords, ErasureRecord, birthday
from services.referral.store import Base as ReferralBase


@pytest.mark.parametrize(
    ("module", "base"),
    [
        (referral_retention, ReferralBase),
        (meeting_retention, MeetingBase),
        (notifications_retention, NotificationsBase),
    ],
)
def test_every_table_is_erased_by_child_or_said_to_hold_nothing_of_a_child(
    module: object, base: type
) -> None:
    erased = set(module.ERASED_TABLES)  # type: ignore[attr-defined]
    kept = set(module.KEPT_TABLES)  # type: ignore[attr-defined]
    assert not erased & kept
    assert erased | kept == set(base.metadata.tables)  # type: ignore[attr-defined]


def policy(**kw: object) -> RetentionSettings:
    # The test tier's payload keys come from the key file tests/conftest.py names.
    return RetentionSettings.model_validate({"environment": "test", **kw})


def child(dob: str, last: datetime, open_case: bool = False) -> ChildRecords:
    c = ChildRecords(referral_ids=[uuid.uuid4()], open_case=open_case)
    c._saw(last, {"date_of_birth": dob})
    return c


def test_due_on_the_later_of_the_birthday_and_years_after_closure() -> None:
    p = policy(retention_keep_until_age=25, retention_years_after_closure=6)
    closed = datetime(2026, 5, 1, 12, tzinfo=UTC)
    # 14 at closure: the 25th birthday is later than six years on.
    assert child("2012-02-03", closed).due_on(p) == date(2037, 2, 3)
    # 17 at closure, 25 in 2033: under a ten-year policy, ten years on is later.
    ten = policy(retention_keep_until_age=25, retention_years_after_closure=10)
    assert child("2008-09-01", closed).due_on(ten) == date(2036, 5, 1)
    # Never while a case is open, nor when the date of birth cannot be read.
    assert child("2008-09-01", closed, open_case=True).due_on(p) is None
    unreadable = ChildRecords(referral_ids=[uuid.uuid4()])
    unreadable._saw(closed, {"date_of_birth": "not a date"})
    assert unreadable.due_on(p) is None


def test_the_youngest_date_of_birth_and_the_latest_activity_count() -> None:
    p = policy(retention_keep_until_age=25, retention_years_after_closure=6)
    c = ChildRecords(referral_ids=[uuid.uuid4()])
    c._saw(datetime(2026, 1, 1, tzinfo=UTC), {"date_of_birth": "2012-02-03"})
    # A later record corrects the date of birth to a later one: the later birthday counts.
    c._saw(datetime(2040, 1, 1, tzinfo=UTC), {"date_of_birth": "2012-03-03"})
    assert c.due_on(p) == date(2046, 1, 1)


def test_a_leap_day_birthday_falls_on_1_march() -> None:
    assert birthday(date(2012, 2, 29), 25) == date(2037, 3, 1)
    assert birthday(date(2012, 2, 29), 24) == date(2036, 2, 29)


def test_a_policy_that_would_erase_a_childs_records_too_soon_is_refused() -> None:
    with pytest.raises(ValidationError, match="retention_keep_until_age"):
        policy(retention_keep_until_age=16)
    with pytest.raises(ValidationError, match="retention_years_after_closure"):
        policy(retention_years_after_closure=0)
    assert policy().retention_policy == "later-of-age-25-or-6y-after-closure"


def test_the_record_of_an_erasure_has_ids_counts_times_and_the_policy_only() -> None:
    """A new column needs thought (no erased data on the record), and this test changed."""
    assert sorted(c.name for c in ErasureRecord.__table__.columns) == [
        "counts",
        "episode_ids",
        "finished_at",
        "id",
        "keep_until_age",
        "policy",
        "referral_ids",
        "started_at",
        "status",
        "sweep_id",
        "years_after_closure",
    ]
