"""A national-scale year of history for the import and reports benches, made from a seed:
the same arguments make the same file. Every case and episode is closed (exited or closed at
Pre-MSET; returned, interview outcome recorded), so the bench times the import's own work —
validation, decisions checked, batches written — and no Temporal; open rows are started by
their workflows, at whatever rate the cluster starts workflows (bench/burst times that).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

YEAR = datetime(2024, 1, 1, tzinfo=UTC)
POLICE = "Bench Police"
GENDERS = ["female"] * 6 + ["male"] * 3 + ["non_binary", "not_known"]
LEGAL = [
    "none",
    "child_in_need_s17",
    "child_protection_plan",
    "looked_after_s20",
    "looked_after_s31",
]
ETHNICITY = [
    "White British",
    "Mixed White and Black Caribbean",
    "Asian British - Pakistani",
    "Black British - African",
    "White Other",
    None,
]
TYPES = [
    "boyfriend_model",
    "peer_on_peer",
    "gang",
    "criminal_county_lines",
    "online",
    "party_commodity",
]
INDICATORS = ["MIS-01", "GIF-02", "ADP-01", "PRE-02", "EDU-02", "SUB-03"]
RHI = ["completed"] * 6 + ["refused_by_young_person", "refused_by_parent_carer", "not_offered"]
EXITS = ["sufficiently_safe"] * 5 + [
    "nothing_more_mset_can_offer",
    "moved_out_of_area",
    "transition_to_adult_services",
]


def authorities(n: int) -> list[str]:
    return [f"la-{i:03d}" for i in range(1, n + 1)]


def agency_of(la: str) -> str:
    return f"Bench CSC {la}"


def _at(rng: random.Random, start: datetime, days: float) -> datetime:
    return start + timedelta(seconds=rng.randrange(int(days * 86400)))


def _iso(t: datetime) -> str:
    return t.isoformat()


def _dob(rng: random.Random, at: datetime) -> str:
    age_days = rng.randrange(11 * 365, 17 * 365)
    return (at.date() - timedelta(days=age_days)).isoformat()


def referral(rng: random.Random, i: int, la: str) -> dict[str, Any]:
    sub = _at(rng, YEAR, 330)
    level = rng.choice(["low", "medium", "medium", "high"])
    row: dict[str, Any] = {
        "kind": "referral",
        "agency": agency_of(la),
        "submitted_at": _iso(sub),
        "suggested_level": level,
        "tool": {
            "partner_reference": f"BR-{i:07d}",
            "referrer": {"role": "Social worker"},
            "child": {
                "agency_child_ref": f"CH-{i:07d}",
                "date_of_birth": _dob(rng, sub),
                "gender": rng.choice(GENDERS),
                **({"ethnicity": e} if (e := rng.choice(ETHNICITY)) else {}),
                "disability_or_sen": rng.random() < 0.2,
                "legal_status": rng.choice(LEGAL),
                "local_authority": la,
                "area_of_residence": f"Ward {rng.randrange(1, 25)}",
                "known_to_services": True,
            },
            "consent": {
                "young_person_aware": True,
                "parent_carer_aware": rng.random() < 0.7,
                "lawful_basis": "public_task",
            },
            "indicators": [
                {"code": c, "recency": "current"}
                for c in rng.sample(INDICATORS, rng.randrange(1, 5))
            ],
            "exploitation_types": rng.sample(TYPES, rng.randrange(0, 3)),
            "referrer_judgement": {"level": level, "rationale": "Bench referral."},
        },
    }
    decided = sub + timedelta(days=rng.randrange(3, 15))
    if level == "low" or rng.random() < 0.35:
        row["pre_mset"] = {
            "outcome": "not_met",
            "level": level,
            "rationale": "Advice to the case holder.",
            "decided_at": _iso(decided),
        }
        return row
    row["pre_mset"] = {"outcome": "meets_criteria", "level": level, "decided_at": _iso(decided)}
    reviews: list[dict[str, Any]] = []
    at = decided
    for r in range(rng.randrange(1, 4)):
        at = at + timedelta(days=rng.randrange(7, 30))
        actions: list[dict[str, Any]] = []
        for a in range(rng.randrange(0, 3)):
            due = at + timedelta(days=rng.randrange(7, 28))
            act = {
                "action_id": f"A{r}-{a}",
                "owner_agency": POLICE,
                "due_at": _iso(due),
                "aim": rng.choice(["remove", "avoid", "reduce"]),
                "target": rng.choice(["victim", "perpetrator", "location"]),
                "description": "Bench action.",
            }
            if rng.random() < 0.7:
                act["completed_at"] = _iso(at + timedelta(days=rng.randrange(1, 30)))
            actions.append(act)
        reviews.append(
            {"level": level, "review_id": f"R{r}", "decided_at": _iso(at), "actions": actions}
        )
    row["reviews"] = reviews
    done = [a["completed_at"] for r in reviews for a in r["actions"] if "completed_at" in a]
    exited = max([at + timedelta(days=rng.randrange(7, 60)), *map(datetime.fromisoformat, done)])
    row["exit"] = {
        "reason": rng.choice(EXITS),
        "exited_at": _iso(exited + timedelta(hours=1)),
        "actions": [
            {"action_id": a["action_id"], "disposition": "closed"}
            for r in reviews
            for a in r["actions"]
            if "completed_at" not in a
        ],
    }
    return row


def episode(rng: random.Random, i: int, la: str, referrals: int) -> dict[str, Any]:
    rep = _at(rng, YEAR, 360)
    child = rng.randrange(max(referrals, 1) * 2)  # half the children have a case
    back = rep + timedelta(hours=rng.randrange(2, 96))
    outcome = rng.choice(RHI)
    rhi: dict[str, Any] = {"outcome": outcome}
    if outcome == "not_offered":
        rhi["reason_not_offered"] = "Bench reason."
    else:
        rhi["offered_at"] = _iso(back + timedelta(hours=rng.randrange(1, 120)))
    return {
        "kind": "missing_episode",
        "agency": POLICE,
        "report": {
            "partner_reference": f"MFH-{i:07d}",
            "child": {
                "agency_child_ref": f"CH-{child:07d}",
                "date_of_birth": (
                    date(2024, 1, 1) - timedelta(days=4000 + child % 2000)
                ).isoformat(),
                "local_authority": la,
            },
            "reported_at": _iso(rep),
        },
        "returned": {"returned_at": _iso(back)},
        "rhi": rhi,
    }


def rows(referrals: int, episodes: int, n_authorities: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    las = authorities(n_authorities)
    for i in range(referrals):
        yield referral(rng, i, las[i % len(las)])
    for i in range(episodes):
        yield episode(rng, i, las[i % len(las)], referrals)


def write(path: Path, referrals: int, episodes: int, n_authorities: int, seed: int) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows(referrals, episodes, n_authorities, seed):
            f.write(json.dumps(row, separators=(",", ":")) + "\n")
            n += 1
    return n
