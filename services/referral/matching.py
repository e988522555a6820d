"""Same-child matching: plain logic, no database (ADR 0028).

The method is splink's (Fellegi-Sunter): each field of two records is compared at a few
levels (exact, a nickname, a typo or transposition, sounds alike, differs, missing); each
level adds a match weight, log2 of how much more often that level is seen between records of
the same child than between records of different children; the weights add up to the pair's
score. The comparisons are rapidfuzz's (Jaro-Winkler; optimal string alignment distance,
which counts a transposition of two letters as one edit), the phonetic keys jellyfish's
(metaphone) and the nicknames the ``nicknames`` package's hand-curated list.

Certain: the same NHS number (checked with its modulus-11 digit at the door, so a mistyped
digit or two swapped digits cannot make it). Two different NHS numbers are two children, so
the pair is no candidate whatever the rest says (twins have different NHS numbers).
Everything else is a candidate for a coordinator when its score reaches ``REVIEW_AT``: a
probabilistic match is never linked without a person.

Blocking keys decide which known children a new tool is compared with at all (a few dozen,
not all 100,000): the date of birth with the gender; the family name's sound with the year
and month of birth; the family and given names' sounds (the given name's nickname roots too)
with no date, for a date of birth written wrong; the postcode with the birth year. A record
is stored with its keys, and a new tool looks up its own and their variants (names swapped,
day and month swapped), so one error in a field still meets the other fields' keys. Keys
are stored as blind indexes (HMAC), never in clear.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import jellyfish
from nicknames import NickNamer
from rapidfuzz.distance import OSA, JaroWinkler

from mset_contract.identity import Agreement

# A pair scoring this much or more goes to the coordinator's review queue. Chosen with
# bench/matching (a generated population with realistic errors): recall of true duplicates
# over 0.95 with few different children to reject.
REVIEW_AT = 11.0
# NHS number equal: the pair is the same child, whatever else differs.
CERTAIN = 100.0

# Match weights (log2 likelihood ratios) of each comparison level. Set by hand from the
# error rates the bench generates and the literature's (ONS, splink's examples), then checked
# by the bench: the score only has to rank and separate, not be a calibrated probability.
W_GIVEN = {
    Agreement.exact: 6.0,
    Agreement.nickname: 5.0,
    Agreement.close: 4.0,
    Agreement.sounds_alike: 3.0,
    Agreement.partial: 1.0,
    Agreement.differs: -4.0,
}
W_FAMILY = {
    Agreement.exact: 7.0,
    Agreement.close: 5.0,
    Agreement.sounds_alike: 4.0,
    Agreement.partial: 1.0,
    Agreement.differs: -3.0,
}
W_DOB = {
    Agreement.exact: 8.0,
    Agreement.swapped: 6.0,
    Agreement.close: 3.0,  # one of day, month and year differs
    Agreement.differs: -8.0,
}
W_GENDER = {Agreement.exact: 0.5, Agreement.differs: -4.0, Agreement.missing: 0.0}
W_AUTHORITY = {Agreement.exact: 1.0, Agreement.differs: -1.0}
W_POSTCODE = {
    Agreement.exact: 4.0,
    Agreement.partial: 1.0,  # the same outward code (district)
    Agreement.differs: -0.5,  # children move
    Agreement.missing: 0.0,
}
# Given and family names swapped (a tool that put the surname first) costs a little against
# the same names in their own fields.
SWAP_PENALTY = 1.0

_NAMER = NickNamer()
_NOT_LETTERS = re.compile(r"[^a-z]+")
_UNKNOWN_GENDERS = {"not_known", "other"}


def norm(name: str) -> str:
    """Lower case ASCII letters only: accents folded, hyphens, apostrophes, spaces gone."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return _NOT_LETTERS.sub("", folded.lower())


@lru_cache(maxsize=65536)
def name_parts(name: str) -> tuple[str, ...]:
    """Each word of a (possibly double-barrelled) name, normalised; and the whole."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    words = [w for w in re.split(r"[^a-z]+", folded) if w]
    whole = "".join(words)
    return tuple(dict.fromkeys([whole, *words])) if whole else ()


@lru_cache(maxsize=65536)
def sound(name: str) -> str:
    return jellyfish.metaphone(name) if name else ""


@lru_cache(maxsize=65536)
def nickname_forms(given: str) -> frozenset[str]:
    """The name, its nicknames and the names it is a nickname of ("bob" → robert, ...)."""
    if not given:
        return frozenset()
    return frozenset({given, *_NAMER.canonicals_of(given), *_NAMER.nicknames_of(given)})


def nickname_roots(given: str) -> frozenset[str]:
    """The name and the full names it may be short for: what blocking keys are made of."""
    if not given:
        return frozenset()
    return frozenset({given, *_NAMER.canonicals_of(given)})


@dataclass(frozen=True)
class Person:
    """What matching compares, decrypted: never stored or logged as it is."""

    given: list[str]  # normalised given names: the given name, known-as, aliases' first words
    family: list[str]  # normalised family names, with the parts of double-barrelled ones
    date_of_birth: date
    gender: str
    local_authority: str
    nhs_number: str | None = None
    postcode: str | None = None

    @classmethod
    def of(
        cls,
        *,
        given: str | None,
        family: str | None,
        known_as: str | None = None,
        aliases: Iterable[str] = (),
        date_of_birth: date,
        gender: str,
        local_authority: str,
        nhs_number: str | None = None,
        postcode: str | None = None,
    ) -> Person:
        givens: list[str] = []
        families: list[str] = []
        for g in (given, known_as):
            if g:
                givens.extend(name_parts(g)[1:] or name_parts(g))
        if family:
            families.extend(name_parts(family))
        for alias in aliases:
            words = name_parts(alias)
            if len(words) >= 3:  # whole, first, ..., last
                givens.append(words[1])
                families.append(words[-1])
            elif words:
                givens.append(words[0])
        return cls(
            given=list(dict.fromkeys(g for g in givens if g)),
            family=list(dict.fromkeys(f for f in families if f)),
            date_of_birth=date_of_birth,
            gender=gender,
            local_authority=local_authority,
            nhs_number=nhs_number,
            postcode=postcode,
        )


def swapped_day_month(d: date) -> date | None:
    if d.day > 12 or d.day == d.month:
        return None
    try:
        return d.replace(month=d.day, day=d.month)
    except ValueError:
        return None


# --- blocking ------------------------------------------------------------------------------


def _month(d: date) -> str:
    return f"{d.year}-{d.month:02d}"


def block_keys(p: Person) -> set[tuple[str, str]]:
    """The (kind, value) keys a record is stored under: the date of birth with the gender;
    the family name's sound with the year and month of birth; the family and given names'
    sounds (the given name's nickname roots too) with no date at all; the postcode with the
    birth year."""
    keys = {("dob", f"{p.date_of_birth.isoformat()}|{p.gender}")}
    for f in p.family:
        keys.add(("fam", f"{sound(f)}|{_month(p.date_of_birth)}"))
        for g in p.given:
            for root in nickname_roots(g):
                keys.add(("name", f"{sound(f)}|{sound(root)}"))
    if p.postcode:
        keys.add(("pc", f"{p.postcode}|{p.date_of_birth.year}"))
    return keys


def probe_keys(p: Person) -> set[tuple[str, str]]:
    """The keys a new tool looks up: its own, and those of its likely errors (given and
    family names swapped; day and month swapped; the gender not known on one side)."""
    keys = set(block_keys(p))
    dobs = [p.date_of_birth]
    swapped = swapped_day_month(p.date_of_birth)
    if swapped is not None:
        dobs.append(swapped)
    genders = {p.gender, "not_known"} if p.gender != "not_known" else {"female", "male"}
    for d in dobs:
        for g in genders | {p.gender}:
            keys.add(("dob", f"{d.isoformat()}|{g}"))
        for f in p.family:
            keys.add(("fam", f"{sound(f)}|{_month(d)}"))
        for g in p.given:  # the names written the other way round
            keys.add(("fam", f"{sound(g)}|{_month(d)}"))
    for g in p.given:
        for f in p.family:
            for root in nickname_roots(f):
                keys.add(("name", f"{sound(g)}|{sound(root)}"))
    return keys


# --- comparing -----------------------------------------------------------------------------


def compare_name(a: str, b: str, *, nicknames: bool) -> Agreement:
    if not a or not b:
        return Agreement.missing
    if a == b:
        return Agreement.exact
    if nicknames and (b in nickname_forms(a) or a in nickname_forms(b)):
        return Agreement.nickname
    if nicknames and nickname_roots(a) & nickname_roots(b):
        return Agreement.nickname
    shorter = min(len(a), len(b))
    if (shorter >= 4 and OSA.distance(a, b) <= 1) or (
        shorter >= 5 and JaroWinkler.similarity(a, b) >= 0.94
    ):
        return Agreement.close
    if sound(a) == sound(b):
        return Agreement.sounds_alike
    if shorter >= 3 and (a.startswith(b) or b.startswith(a)):
        return Agreement.partial
    return Agreement.differs


_ORDER = [
    Agreement.exact,
    Agreement.nickname,
    Agreement.close,
    Agreement.sounds_alike,
    Agreement.partial,
    Agreement.differs,
    Agreement.missing,
]


def best_name(xs: list[str], ys: list[str], *, nicknames: bool) -> Agreement:
    if not xs or not ys:
        return Agreement.missing
    found = {compare_name(x, y, nicknames=nicknames) for x in xs for y in ys}
    return min(found, key=_ORDER.index)


def compare_dob(a: date, b: date) -> Agreement:
    if a == b:
        return Agreement.exact
    if swapped_day_month(a) == b:
        return Agreement.swapped
    same = (a.year == b.year) + (a.month == b.month) + (a.day == b.day)
    if same == 2:
        return Agreement.close
    return Agreement.differs


def compare_gender(a: str, b: str) -> Agreement:
    if a in _UNKNOWN_GENDERS or b in _UNKNOWN_GENDERS:
        return Agreement.missing
    return Agreement.exact if a == b else Agreement.differs


def compare_postcode(a: str | None, b: str | None) -> Agreement:
    if not a or not b:
        return Agreement.missing
    if a == b:
        return Agreement.exact
    if a.split(" ")[0] == b.split(" ")[0]:
        return Agreement.partial
    return Agreement.differs


@dataclass(frozen=True)
class Match:
    score: float
    certain: bool
    agreement: dict[str, Agreement] = field(default_factory=dict)

    @property
    def for_review(self) -> bool:
        return not self.certain and self.score >= REVIEW_AT


def _names_weight(given: Agreement, family: Agreement) -> float:
    return W_GIVEN.get(given, 0.0) + W_FAMILY.get(family, 0.0)


def compare(a: Person, b: Person) -> Match | None:
    """How alike two records are; None when they are certainly two children (two different
    NHS numbers)."""
    if a.nhs_number and b.nhs_number:
        if a.nhs_number == b.nhs_number:
            return Match(CERTAIN, True, {"nhs_number": Agreement.exact})
        return None
    given = best_name(a.given, b.given, nicknames=True)
    family = best_name(a.family, b.family, nicknames=False)
    names = _names_weight(given, family)
    # The names written the other way round on one of the tools.
    g_swapped = best_name(a.given, b.family, nicknames=True)
    f_swapped = best_name(a.family, b.given, nicknames=False)
    swapped = _names_weight(g_swapped, f_swapped) - SWAP_PENALTY
    if swapped > names:
        names = swapped
        given = family = Agreement.swapped
    dob = compare_dob(a.date_of_birth, b.date_of_birth)
    gender = compare_gender(a.gender, b.gender)
    authority = Agreement.exact if a.local_authority == b.local_authority else Agreement.differs
    postcode = compare_postcode(a.postcode, b.postcode)
    score = names + W_DOB[dob] + W_GENDER[gender] + W_AUTHORITY[authority] + W_POSTCODE[postcode]
    agreement = {
        "given_name": given,
        "family_name": family,
        "date_of_birth": dob,
        "gender": gender,
        "local_authority": authority,
        "postcode": postcode,
        "nhs_number": Agreement.missing,
    }
    return Match(round(score, 2), False, agreement)
