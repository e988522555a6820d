"""What the rules may know of a child's date of birth: the month it turns 18 and an age that
follows from it. Triage inputs and results are kept in workflow history, several evaluations
of one case side by side; nothing in them may tell two children born in the same month
apart (a count of days beside ``as_of`` gave the exact date away)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from mset_contract.triage import TriageInput
from mset_contract.types import age_in_month, age_on, birthday, turns_18_month
from services.triage.examples import case

BIRTHS = st.dates(min_value=date(2004, 1, 1), max_value=date(2024, 12, 31))


@given(born=BIRTHS, days_later=st.integers(0, 26 * 366), other_day=st.integers(1, 31))
def test_children_born_in_one_month_get_the_same_facts_on_any_day(
    born: date, days_later: int, other_day: int
) -> None:
    try:
        twin = born.replace(day=other_day)  # born the same month, another day
    except ValueError:
        twin = born.replace(day=28)
    on = born + timedelta(days=days_later)
    # Born on 29 February: turns 18 on 1 March (test_the_18th_birthday_month).
    assume(on >= twin and (2, 29) not in {(born.month, born.day), (twin.month, twin.day)})
    assert turns_18_month(born) == turns_18_month(twin)
    assert age_in_month(turns_18_month(born), on) == age_in_month(turns_18_month(twin), on)


@given(born=BIRTHS, days_later=st.integers(0, 26 * 366))
def test_the_age_the_rules_see_is_never_older_and_at_most_a_month_behind(
    born: date, days_later: int
) -> None:
    on = born + timedelta(days=days_later)
    real = age_on(born, on)
    seen = age_in_month(turns_18_month(born), on)
    assert seen <= real
    assert seen == real or age_on(born, on - timedelta(days=31)) <= seen


def test_the_18th_birthday_month() -> None:
    assert turns_18_month(date(2012, 3, 14)) == date(2030, 3, 1)
    assert birthday(date(2012, 2, 29), 18) == date(2030, 3, 1)
    assert turns_18_month(date(2012, 2, 29)) == date(2030, 3, 1)


def test_a_day_of_the_month_is_refused() -> None:
    with pytest.raises(ValidationError, match="first day of the month"):
        case(turns_18_month=date(2030, 3, 14))


def test_an_input_written_with_a_count_of_days_keeps_only_the_month() -> None:
    # An activity task scheduled before the change still runs after it.
    old = case().model_dump(mode="json")
    del old["turns_18_month"]
    old["days_until_18"] = 100
    old["as_of"] = datetime(2026, 11, 16, 9, 30, tzinfo=UTC).isoformat()
    again = TriageInput.model_validate(old)
    assert again.turns_18_month == date(2027, 2, 1)  # 16 Nov 2026 + 100 days: 24 Feb 2027
    assert "days_until_18" not in again.model_dump()
