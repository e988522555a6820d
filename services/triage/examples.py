"""Triage inputs for tests, the benchmark and demonstrations: a builder that reads like a case
file, and a generator of many distinct, realistic inputs. No personal data: none exists here."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from mset_contract.catalogue import CURRENT_CATALOGUE_VERSION, load_catalogue
from mset_contract.referral import ResolvedIndicator
from mset_contract.triage import ActionFact, MissingEpisodeFact, TriageInput
from mset_contract.types import today_uk
from mset_contract.vocab import ExploitationType, Recency, RiskLevel

AS_OF = datetime(2026, 11, 16, 9, 30, tzinfo=UTC)
OWNER = UUID("6f1c2a0e-3b7d-4c55-9a11-2f0c8e5d7b42")


def indicator(code: str, recency: Recency | str = Recency.current) -> ResolvedIndicator:
    """An indicator as the referral service resolves it: area and kind from the catalogue."""
    entry = load_catalogue(CURRENT_CATALOGUE_VERSION).get(code)
    if entry is None:
        raise KeyError(code)
    return ResolvedIndicator(code=code, area=entry.area, kind=entry.kind, recency=Recency(recency))


def episode(
    ref: str,
    reported: timedelta,
    returned: timedelta | None = None,
    rhi_offered: timedelta | None = None,
    where: str | None = None,
    as_of: datetime = AS_OF,
) -> MissingEpisodeFact:
    """A missing episode reported ``reported`` before ``as_of``, returned ``returned`` before
    it, and a Return Home Interview offered ``rhi_offered`` before it."""
    return MissingEpisodeFact(
        episode_ref=ref,
        reported_at=as_of - reported,
        returned_at=None if returned is None else as_of - returned,
        rhi_offered_at=None if rhi_offered is None else as_of - rhi_offered,
        located_in_authority=where,
    )


def action(ref: str, due_in: timedelta, completed: bool = False) -> ActionFact:
    return ActionFact(
        action_ref=ref, owner_agency_id=OWNER, due_at=AS_OF + due_in, completed=completed
    )


def months_after(moment: datetime, months: int) -> date:
    """The first day of the month ``months`` after ``moment``'s (in England)."""
    start = today_uk(moment)
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def case(*indicators: str | tuple[str, str], **fields: Any) -> TriageInput:
    """A triage input: indicator codes (current) or ``(code, recency)`` pairs, then fields.
    Defaults: a 15-year-old in Northshire, referrer's level low with a rationale."""
    data: dict[str, Any] = {
        "as_of": AS_OF,
        "local_authority": "northshire",
        "age_years": 15,
        "turns_18_month": date(2029, 6, 1),
        "referrer_level": RiskLevel.low,
        "referrer_rationale_given": True,
        "indicators": [
            indicator(i) if isinstance(i, str) else indicator(i[0], i[1]) for i in indicators
        ],
    }
    data.update(fields)
    return TriageInput.model_validate(data)


def distinct_inputs(count: int, seed: int = 2026) -> Iterator[TriageInput]:
    """``count`` different, realistic inputs: a handful of indicators with mixed recency, an
    age, some missing episodes and actions, each at its own ``as_of``."""
    rng = random.Random(seed)  # noqa: S311 - test data, reproducible by seed, not a secret
    codes = [i.code for i in load_catalogue(CURRENT_CATALOGUE_VERSION).indicator]
    recencies = list(Recency)
    for n in range(count):
        as_of = AS_OF + timedelta(minutes=n)  # distinct even where all else repeats
        age = rng.randint(10, 17)
        picked = rng.sample(codes, rng.randint(1, 9))
        episodes = [
            episode(
                f"MFH-{n}-{k}",
                reported=timedelta(hours=rng.randint(24, 24 * 120)),
                returned=timedelta(hours=rng.randint(1, 20)),
                rhi_offered=None if rng.random() < 0.3 else timedelta(minutes=rng.randint(0, 59)),
                where=rng.choice([None, None, "northshire", "eastmoor"]),
                as_of=as_of,
            )
            for k in range(rng.randint(0, 4))
        ]
        actions = [
            ActionFact(
                action_ref=f"ACT-{n}-{k}",
                owner_agency_id=OWNER,
                due_at=as_of + timedelta(hours=rng.randint(-96, 24 * 14)),
                completed=rng.random() < 0.4,
            )
            for k in range(rng.randint(0, 3))
        ]
        yield TriageInput(
            as_of=as_of,
            local_authority="northshire",
            age_years=age,
            turns_18_month=months_after(as_of, (17 - age) * 12 + rng.randint(0, 11)),
            referrer_level=rng.choice(list(RiskLevel)),
            referrer_rationale_given=rng.random() < 0.8,
            indicators=[indicator(c, rng.choice(recencies)) for c in picked],
            exploitation_types=rng.sample(list(ExploitationType), rng.randint(0, 2)),
            missing_episodes=episodes,
            actions=actions,
            last_assessed_at=as_of - timedelta(days=rng.randint(0, 120)),
        )
