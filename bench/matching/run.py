"""Same-child matching: precision and recall on a generated population with realistic errors,
and the time one intake's matching takes against 100,000 known children.

    python -m bench.matching.run                  # 100,000 known children, 2,000 intakes
    python -m bench.matching.run --known 20000 --intakes 500 --seed 7

The known children are sealed and indexed by the referral service's own code
(``IdentityStore.build``) into its own tables (SQLite file, or ``--database-url``), each with
a delivered referral row. Some have a twin (same family name, date of birth, postcode and
authority; their own given name and NHS number). Then intakes arrive, each timed through
``IdentityStore.match`` (blind-index lookups, decrypting the candidates, scoring):

- duplicates of known children, as another agency writes them: the NHS number often missing
  (and a partner who sends one sends it right: it passed its check digit), a nickname or
  known-as name, a typo or two letters transposed in either name, given and family names
  swapped, day and month of birth swapped, a typo in the date, another authority, the gender
  not known, the postcode missing or changed;
- new children, not known: namesakes and children of the same birthday among them.

Printed: precision of automatic links (same child / linked), recall of true duplicates that
reach an automatic link or the review queue, the review queue's precision, candidates scored
per intake, and the time per intake (p50, p95, max). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from mset_contract.identity import nhs_check_digit
from mset_platform.db import make_engine
from mset_platform.field_crypto import DEV_FIELD_KEYRING, DEV_INDEX_KEY, BlindIndex, FieldCipher
from services.referral.child_identity import (
    ChildBlockKey,
    ChildIdentity,
    IdentityStore,
    person_of,
)
from services.referral.matching import REVIEW_AT
from services.referral.store import Agency, Base, Referral, Store

GIRLS = """Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Willow Freya Florence
Emily Ella Poppy Evie Elsie Charlotte Evelyn Sienna Sofia Daisy Phoebe Sophie Alice Harper
Matilda Ruby Emilia Maya Millie Isabelle Eva Luna Jessica Lucy Elizabeth Katherine Rebecca
Abigail Hannah Megan Chloe Lauren Holly Amy Bethany Caitlin Jennifer Samantha Victoria Natalie
Kimberly Margaret Patricia Deborah Susan Kayleigh Leah Zara Aisha Fatima Maryam Amira Layla
Nadia Priya Chantelle Jade Courtney Shannon Tia Kelsey Abbie Paige Demi Jasmine Georgia""".split()
BOYS = """Noah Oliver George Arthur Muhammad Leo Harry Oscar Archie Henry Theodore Freddie Jack
Charlie Theo Alfie Jacob Thomas Finley Arlo William Lucas Roman Tommy Isaac Teddy Alexander
Luca Edward James Joshua Albie Elijah Max Mohammed Reggie Hugo Louie Daniel Benjamin Samuel
Joseph Robert Michael Christopher Matthew Anthony Nicholas Jonathan Richard Timothy Patrick
Kieran Connor Callum Liam Tyler Kyle Jordan Bradley Ryan Nathan Dylan Ethan Mason Logan Kai
Ibrahim Yusuf Omar Ali Hamza Tariq Kwame Kofi Dominic Declan Ronan Aaron""".split()
SURNAMES = """Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts
Robinson Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel
Jackson Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan
Allen James Scott Phillips Watson Davis Parker Price Bennett Young Griffiths Mitchell Kelly
Cook Carter Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards Khan Marshall
Anderson Simpson Ellis Adams Singh Begum Wilkinson Foster Chapman Powell Webb Rogers Gray
Mason Ali Hunt Hussain Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd Butler
Russell Barker Fisher Stevens Jenkins Murray Dixon Harvey Graham Pearson Ahmed Fletcher
Walsh Kaur Gibson Howard Andrews Stewart Elliott Reynolds Saunders Payne Fox Ford Pearce Day
Brooks West Lawrence Cole Atkinson Bradley Spencer Gill Dawson Ball Burton O'Brien Watts
Rose Booth Perry Ryan Grant Wells Armstrong Francis Rees Hayes Hart Hudson Newman Barrett
Webster Hunter Gregory Carr Lowe Page Marsh Riley Dunn Woods Parsons Berry Stone Reid Holland
Hawkins Harding Porter Robertson Newton Oliver Reed Kennedy Williamson Bird Gardner Shah Dean
Lane Cooke Bates Henderson Parry Burgess Bishop Walton Burns Nicholson Shepherd Ross Cross
Long Freeman Warren Nicholls Hamilton Byrne Sutton McDonald Yates Hodgson Robson Curtis
Hopkins O'Connor Harper Coleman Watkins Moss McCarthy Chambers Okafor Adeyemi Mensah Nowak
Kowalski Wisniewski Popescu Ionescu Silva Santos Ferreira Costa Rahman Islam Uddin Miah""".split()
AUTHORITIES = ["northshire", "eastmoor", "westdale", "southvale", "riverton", "highfell"]
# Nicknames an agency writes for a given name (a few; the matcher knows many more).
NICK = {
    "Jessica": ["Jess", "Jessie"], "Rebecca": ["Becky", "Becca"], "Katherine": ["Kate", "Katie"],
    "Elizabeth": ["Lizzie", "Beth", "Liz"], "Samantha": ["Sam", "Sammy"], "Victoria": ["Vicky"],
    "Jennifer": ["Jenny", "Jen"], "Abigail": ["Abbie", "Abby"], "Margaret": ["Maggie", "Peggy"],
    "Patricia": ["Trish", "Patty"], "Deborah": ["Debbie"], "Susan": ["Sue", "Susie"],
    "Charlotte": ["Charlie", "Lottie"], "Isabella": ["Bella", "Izzy"], "Natalie": ["Nat"],
    "Kimberly": ["Kim"], "Florence": ["Flo"], "Matilda": ["Tilly"], "Alexander": ["Alex"],
    "William": ["Will", "Billy"], "Robert": ["Bob", "Rob", "Bobby"], "Thomas": ["Tom", "Tommy"],
    "James": ["Jim", "Jimmy"], "Joseph": ["Joe", "Joey"], "Benjamin": ["Ben"],
    "Samuel": ["Sam"], "Daniel": ["Dan", "Danny"], "Michael": ["Mike", "Mikey"],
    "Christopher": ["Chris"], "Matthew": ["Matt"], "Anthony": ["Tony"], "Nicholas": ["Nick"],
    "Jonathan": ["Jon"], "Richard": ["Rich", "Ricky"], "Timothy": ["Tim"],
    "Edward": ["Ed", "Eddie"],
    "Patrick": ["Pat", "Paddy"], "Theodore": ["Theo", "Ted"], "Frederick": ["Fred"],
    "Joshua": ["Josh"], "Jacob": ["Jake"], "Henry": ["Harry"],
}  # fmt: skip


@dataclass
class Kid:
    id: uuid.UUID
    given: str
    family: str
    dob: date
    gender: str
    authority: str
    nhs: str
    postcode: str


def nhs_numbers(rng: random.Random) -> Any:
    seen: set[str] = set()
    while True:
        nine = f"{rng.randrange(400000000, 999999999):09d}"
        check = nhs_check_digit(nine)
        if check is None or nine in seen:
            continue
        seen.add(nine)
        yield nine + str(check)


def postcode(rng: random.Random, authority: str) -> str:
    area = {"northshire": "NT", "eastmoor": "EM", "westdale": "WD", "southvale": "SV",
            "riverton": "RV", "highfell": "HF"}[authority]  # fmt: skip
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    inward = f"{rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"
    return f"{area}{rng.randint(1, 20)} {inward}"


# Zipf-like: Smith far more common than Miah, as in the population (Smith is about 1 in
# 75 people in England and Wales; here about 1 in 50).
_SURNAME_WEIGHTS = [1 / (rank + 20) for rank in range(len(SURNAMES))]


def weighted_surname(rng: random.Random) -> str:
    return rng.choices(SURNAMES, _SURNAME_WEIGHTS)[0]


def population(
    rng: random.Random, n: int, today: date
) -> tuple[list[Kid], set[frozenset[uuid.UUID]]]:
    """``n`` children aged 10-17; about 1 in 100 born a twin (a pair of known children)."""
    numbers = nhs_numbers(rng)
    kids: list[Kid] = []
    twins: set[frozenset[uuid.UUID]] = set()
    while len(kids) < n:
        gender = rng.choice(["female", "male"])
        given = rng.choice(GIRLS if gender == "female" else BOYS)
        dob = today - timedelta(days=rng.randint(10 * 365, 17 * 365 + 300))
        authority = rng.choice(AUTHORITIES)
        kid = Kid(uuid.uuid4(), given, weighted_surname(rng), dob, gender, authority,
                  next(numbers), postcode(rng, authority))  # fmt: skip
        kids.append(kid)
        if rng.random() < 0.01 and len(kids) < n:
            g2 = rng.choice(["female", "male"])
            other = rng.choice([x for x in (GIRLS if g2 == "female" else BOYS) if x != given])
            twin = Kid(uuid.uuid4(), other, kid.family, dob, g2, authority, next(numbers),
                       kid.postcode)  # fmt: skip
            kids.append(twin)
            twins.add(frozenset({kid.id, twin.id}))
    return kids, twins


def typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word + word[-1]
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["drop", "double", "swap", "replace"])
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + rng.choice("aeiourstnl") + word[i + 1 :]


def as_another_agency_writes(rng: random.Random, k: Kid) -> dict[str, Any]:
    """The same child, written by another agency, with the errors people make."""
    given, family, dob = k.given, k.family, k.dob
    gender, authority, pc = k.gender, k.authority, k.postcode
    nhs: str | None = k.nhs if rng.random() < 0.4 else None  # often not known to the agency
    r = rng.random()
    if r < 0.2 and given in NICK:
        given = rng.choice(NICK[given])
    elif r < 0.32:
        given = typo(rng, given)
    if rng.random() < 0.12:
        family = typo(rng, family)
    if rng.random() < 0.04:
        given, family = family, given
    r = rng.random()
    if r < 0.06 and dob.day <= 12 and dob.day != dob.month:
        dob = dob.replace(month=dob.day, day=dob.month)
    elif r < 0.1:
        dob = dob.replace(day=min(28, dob.day % 28 + 1))
    if rng.random() < 0.2:
        authority = rng.choice(AUTHORITIES)  # moved, or referred where found
    if rng.random() < 0.04:
        gender = "not_known"
    r = rng.random()
    if r < 0.4:
        pc_: str | None = None
    elif r < 0.55:
        pc_ = postcode(rng, authority)  # moved
    else:
        pc_ = pc
    return doc(given, family, dob, gender, nhs, pc_) | {"authority": authority}


def doc(
    given: str, family: str, dob: date, gender: str, nhs: str | None, pc: str | None
) -> dict[str, Any]:
    return {
        "name": {"given": given, "family": family, "known_as": None, "aliases": []},
        "nhs_number": nhs,
        "postcode": pc,
        "date_of_birth": dob.isoformat(),
        "gender": gender,
    }


def load(store: Store, identities: IdentityStore, kids: list[Kid]) -> float:
    started = time.perf_counter()
    now = datetime.now(UTC)
    with store.session() as s:
        agency = Agency(id=uuid.uuid4(), name="Bench CSC", type="local_authority", created_at=now)
        s.add(agency)
        s.flush()
        agency_id = agency.id
    batch = 5000
    for i in range(0, len(kids), batch):
        refs: list[dict[str, Any]] = []
        idents: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        for k in kids[i : i + batch]:
            refs.append({
                "id": k.id, "agency_id": agency_id, "partner_reference": str(k.id),
                "agency_child_ref": str(k.id)[:20], "local_authority": k.authority,
                "stage": "awaiting_pre_mset", "referrer_level": "medium",
                "workflow_id": f"referral-{k.id}", "workflow_started": True, "origin": "tool",
                "tool": {}, "submitted_at": now, "updated_at": now, "open_actions": 0,
            })  # fmt: skip
            ident, blocks, _ = identities.build(
                k.id, doc(k.given, k.family, k.dob, k.gender, k.nhs, k.postcode), k.authority, now
            )
            idents.append({c: getattr(ident, c) for c in ChildIdentity.__table__.columns.keys()})
            keys.extend({"referral_id": b.referral_id, "key": b.key} for b in blocks)
        with store.session() as s:
            s.execute(insert(Referral), refs)
            s.execute(insert(ChildIdentity), idents)
            s.execute(insert(ChildBlockKey), keys)
    return time.perf_counter() - started


def _pattern(agreement: dict[str, Any]) -> str:
    short = {"given_name": "g", "family_name": "f", "date_of_birth": "d", "gender": "s",
             "local_authority": "a", "postcode": "p"}  # fmt: skip
    return "/".join(f"{short[k]}={v.value[:5]}" for k, v in agreement.items() if k in short)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--known", type=int, default=100_000)
    ap.add_argument("--intakes", type=int, default=2_000, help="half duplicates, half new")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    today = date.today()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'referral.db'}"
        engine = make_engine(url)
        Base.metadata.create_all(engine)
        store = Store(engine)
        identities = IdentityStore(FieldCipher(DEV_FIELD_KEYRING), BlindIndex(DEV_INDEX_KEY))
        kids, twins = population(rng, args.known, today)
        loaded = load(store, identities, kids)
        twin_of = {k: next(iter(p - {k})) for p in twins for k in p}

        # Intakes: duplicates of known children (twins among them), and new children.
        probes: list[tuple[dict[str, Any], uuid.UUID | None]] = []
        dup_sources = rng.sample(kids, args.intakes // 2)
        for k in dup_sources:
            probes.append((as_another_agency_writes(rng, k), k.id))
        fresh, _ = population(random.Random(args.seed + 1), args.intakes - len(probes), today)
        for k in fresh:
            if rng.random() < 0.3:  # a namesake: a known child's name and birth year
                twin = rng.choice(kids)
                k.family, k.dob = twin.family, k.dob.replace(year=twin.dob.year)
            nhs = None if rng.random() < 0.5 else k.nhs
            d = doc(k.given, k.family, k.dob, k.gender, nhs, k.postcode)
            probes.append((d | {"authority": k.authority}, None))
        rng.shuffle(probes)

        times: list[float] = []
        scored: list[int] = []
        auto_true = auto_false = review_true = review_false = 0
        dup_found = dup_total = twin_auto = 0
        errors: Counter[str] = Counter()
        false_patterns: Counter[str] = Counter()
        with store.session() as s:
            for d, truth in probes:
                authority = d.pop("authority")
                person = person_of(d, authority)
                t0 = time.perf_counter()
                found = identities.match(s, person, ())
                times.append(time.perf_counter() - t0)
                scored.append(len(identities.candidates(s, person, ())))  # untimed: a count
                hit = False
                for known, m in found:
                    same = known.referral_id == truth
                    if m.certain:
                        auto_true += same
                        auto_false += not same
                        if truth is not None and twin_of.get(truth) == known.referral_id:
                            twin_auto += 1
                    else:
                        review_true += same
                        review_false += not same
                        if not same:
                            false_patterns[_pattern(m.agreement)] += 1
                    hit = hit or same
                if truth is not None:
                    dup_total += 1
                    dup_found += hit
                    if not hit:
                        errors["without an NHS number" if d["nhs_number"] is None else "other"] += 1
        engine.dispose()

    ms = sorted(t * 1000 for t in times)
    auto = auto_true + auto_false
    review = review_true + review_false
    db = "SQLite (temporary file)" if args.database_url is None else args.database_url[:10]
    print(f"machine: {platform.machine()} {platform.python_version()}, database: {db}")
    print(f"known children: {len(kids):,} ({len(twins)} pairs of twins), loaded in {loaded:.1f} s")
    print(f"intakes: {len(probes):,} ({dup_total} duplicates of known children, "
          f"{len(probes) - dup_total} new children); review threshold {REVIEW_AT}")  # fmt: skip
    precision = auto_true / auto if auto else float("nan")
    print(
        f"automatic links (same NHS number): {auto}, precision {precision:.4f}; "
        f"twins auto-linked: {twin_auto}"
    )
    print(f"review queue: {review} candidates, precision "
          f"{review_true / review if review else float('nan'):.4f}")  # fmt: skip
    print(f"recall of duplicates (automatic link or review): {dup_found}/{dup_total} = "
          f"{dup_found / dup_total if dup_total else float('nan'):.4f}")  # fmt: skip
    common = ", ".join(f"{p} x{n}" for p, n in false_patterns.most_common(5))
    print(f"review candidates of different children, commonest: {common or 'none'}")
    print(f"duplicates missed: {dict(errors) or 'none'}")
    print(f"candidates scored per intake: mean {statistics.mean(scored):.1f}, "
          f"max {max(scored)}")  # fmt: skip
    print(f"time per intake (lookup, decrypt, score): p50 {ms[len(ms) // 2]:.2f} ms, "
          f"p95 {ms[int(len(ms) * 0.95)]:.2f} ms, max {ms[-1]:.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
