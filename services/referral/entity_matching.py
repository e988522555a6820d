"""Same-person and same-place matching of mentions: plain logic, no database (ADR 0030).

A person of concern is recognised by what does not change between referrers: a phone
number, a social-media handle, a vehicle registration; a name less surely (nicknames,
spellings, a street name given by one child and a full name by another). A place by its
postcode, address, name or online space. Each is normalised (a phone number's digits with
+44 as 0; a handle without its @ and case; a registration's letters and digits; a postcode
without spaces) and kept as a blind index, so two mentions with the same value meet without
either being decrypted. A name is also kept by its sound (metaphone of each part, in order),
so "Mo Khan" meets "Moe Kahn"; the pair found is then compared with rapidfuzz.

No match is ever made without a person: every pair found is a candidate for a coordinator,
with what the two share (never the values) and a score to order the queue.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

from services.referral.matching import sound

# The weight of each thing two mentions can share: an identifier (a phone, a handle, a
# registration, a full address, an online space) almost settles it; a name, a postcode
# (about fifteen addresses) or a place's name ("the takeaway") only points.
WEIGHTS = {
    "phone": 5.0,
    "handle": 5.0,
    "vehicle": 5.0,
    "address": 5.0,
    "online": 5.0,
    "name": 2.0,
    "name_similar": 1.0,
    "postcode": 2.0,
    "place_name": 2.0,
}
# Kinds of blind index that only find pairs to compare (their agreement is judged on the
# decrypted names).
FINDING_ONLY = {"name_sound"}
NAME_SIMILAR_AT = 85.0


def phone_key(v: str) -> str:
    digits = re.sub(r"\D", "", v)
    if digits.startswith("44") and len(digits) > 10:
        digits = "0" + digits[2:]
    return digits


def handle_key(v: str) -> str:
    return v.strip().lstrip("@").replace(" ", "").casefold()


def vehicle_key(v: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", v).upper()


def postcode_key(v: str) -> str:
    return re.sub(r"\s", "", v).upper()


def fold(v: str) -> str:
    """Lower case ASCII, accents folded."""
    return unicodedata.normalize("NFKD", v).encode("ascii", "ignore").decode().lower()


def text_key(v: str) -> str:
    """A name, an address or a place's name: letters and digits, in order, one space apart."""
    return " ".join(re.findall(r"[a-z0-9]+", fold(v)))


def name_sound(v: str) -> str:
    parts = [sound(p) for p in re.findall(r"[a-z]+", fold(v))]
    return " ".join(p for p in parts if p)


def keys_of(kind: str, doc: dict[str, Any]) -> set[tuple[str, str]]:
    """The (kind of key, normalised value) pairs a mention is indexed by."""
    out: set[tuple[str, str]] = set()
    if kind == "person":
        for n in doc.get("names") or ():
            if text_key(n):
                out.add(("name", text_key(n)))
            if name_sound(n):
                out.add(("name_sound", name_sound(n)))
        out |= {("phone", phone_key(p)) for p in doc.get("phones") or ()}
        out |= {("handle", handle_key(h)) for h in doc.get("handles") or () if handle_key(h)}
        out |= {("vehicle", vehicle_key(v)) for v in doc.get("vehicles") or ()}
    else:
        if doc.get("postcode"):
            out.add(("postcode", postcode_key(doc["postcode"])))
        if doc.get("address") and text_key(doc["address"]):
            out.add(("address", text_key(doc["address"])))
        if doc.get("place_name") and text_key(doc["place_name"]):
            out.add(("place_name", text_key(doc["place_name"])))
        if doc.get("online") and handle_key(doc["online"]):
            out.add(("online", handle_key(doc["online"])))
    return out


@dataclass(frozen=True)
class EntityMatch:
    score: float
    agreement: tuple[str, ...]


def names_similar(a: Iterable[str], b: Iterable[str]) -> bool:
    xs, ys = [text_key(n) for n in a], [text_key(n) for n in b]
    return any(fuzz.token_sort_ratio(x, y) >= NAME_SIMILAR_AT for x in xs for y in ys)


def compare(shared_kinds: Iterable[str], a: dict[str, Any], b: dict[str, Any]) -> EntityMatch:
    """Two mentions found to share ``shared_kinds`` of key: what they share and the score."""
    agree = {k for k in shared_kinds if k not in FINDING_ONLY}
    if "name" not in agree and names_similar(a.get("names") or (), b.get("names") or ()):
        agree.add("name_similar")
    ordered = tuple(sorted(agree, key=lambda k: (-WEIGHTS.get(k, 0.0), k)))
    return EntityMatch(sum(WEIGHTS.get(k, 0.0) for k in ordered), ordered)
