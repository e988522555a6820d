"""Same-child matching: the errors people make when they write a child's details (nicknames,
typos, letters swapped, given and family names swapped, day and month swapped, a missing
NHS number) still find the child; twins and namesakes are never linked without a person."""

from __future__ import annotations

from datetime import date

import pytest

from mset_contract.identity import Agreement
from services.referral.matching import REVIEW_AT, Person, block_keys, compare, probe_keys

DOB = date(2011, 4, 9)


def child(
    given: str = "Jessica",
    family: str = "Marsh",
    *,
    dob: date = DOB,
    gender: str = "female",
    authority: str = "northshire",
    nhs: str | None = None,
    postcode: str | None = "NT1 2AB",
    known_as: str | None = None,
    aliases: tuple[str, ...] = (),
) -> Person:
    return Person.of(
        given=given,
        family=family,
        known_as=known_as,
        aliases=aliases,
        date_of_birth=dob,
        gender=gender,
        local_authority=authority,
        nhs_number=nhs,
        postcode=postcode,
    )


def review(a: Person, b: Person) -> bool:
    """The pair reaches the coordinator: it shares a blocking key and scores enough."""
    assert probe_keys(a) & block_keys(b), "never compared: no blocking key in common"
    m = compare(a, b)
    return m is not None and (m.certain or m.score >= REVIEW_AT)


def test_the_same_nhs_number_is_certain_whatever_else_differs() -> None:
    m = compare(
        child(nhs="9434765919"), child("Jay", "Smith", dob=date(2012, 1, 1), nhs="9434765919")
    )
    assert m is not None and m.certain


def test_two_different_nhs_numbers_are_two_children() -> None:
    assert compare(child(nhs="9434765919"), child(nhs="9990000018")) is None


@pytest.mark.parametrize(
    ("other", "given_agreement"),
    [
        (child("Jess"), Agreement.nickname),
        (child("Jessie"), Agreement.nickname),
        (child("Jesica"), Agreement.close),  # a letter missing
        (child("Jessicca"), Agreement.close),  # a letter doubled
        (child("Jsesica"), Agreement.close),  # two letters transposed
    ],
)
def test_nicknames_typos_and_transposed_letters_reach_review(
    other: Person, given_agreement: Agreement
) -> None:
    a = child()
    m = compare(a, other)
    assert m is not None and m.agreement["given_name"] == given_agreement
    assert review(other, a) and not m.certain


def test_a_nickname_from_another_agency_across_authorities_reaches_review() -> None:
    health = child("Robert", "Okafor", gender="male", postcode=None)
    police = child("Bob", "Okafor", gender="male", authority="eastmoor", postcode=None)
    assert review(police, health)


def test_a_family_name_with_a_typo_still_matches() -> None:
    assert review(child(family="Marhs"), child())
    assert review(child(family="Marsch"), child())


def test_given_and_family_names_written_the_wrong_way_round() -> None:
    m = compare(child("Marsh", "Jessica"), child())
    assert m is not None and m.agreement["given_name"] == Agreement.swapped
    assert review(child("Marsh", "Jessica"), child())


def test_day_and_month_swapped_in_the_date_of_birth() -> None:
    swapped = child(dob=date(2011, 9, 4))
    m = compare(swapped, child())
    assert m is not None and m.agreement["date_of_birth"] == Agreement.swapped
    assert review(swapped, child())


def test_a_known_as_name_or_an_alias_matches_the_name_on_another_tool() -> None:
    assert review(child("Kayleigh", "Marsh"), child("Jessica", "Marsh", known_as="Kayleigh"))
    assert review(child("Jessica", "Cole"), child(aliases=("Jessica Cole",)))


def test_twins_are_never_linked_automatically() -> None:
    # Same family, date of birth, postcode and authority; different given names.
    a, b = child("Amelia"), child("Olivia")
    m = compare(a, b)
    assert m is not None and not m.certain
    assert m.agreement["given_name"] == Agreement.differs
    # With their NHS numbers, they are certainly two children.
    assert compare(child("Amelia", nhs="9434765919"), child("Olivia", nhs="9990000018")) is None


def test_different_children_of_the_same_birthday_do_not_reach_review() -> None:
    assert not review(child("Liam", "Patel", gender="male"), child("Noah", "Jones", gender="male"))
    m = compare(child("Sophie", "Brown"), child("Jessica", "Marsh"))
    assert m is not None and m.score < REVIEW_AT


def test_blocking_keys_hold_no_name_or_date_in_clear_once_indexed() -> None:
    # The keys themselves are phonetic codes and dates; stored, they are HMACs (tested with
    # the store), and a key never holds an NHS number.
    keys = block_keys(child(nhs="9434765919"))
    assert all("9434765919" not in value for _, value in keys)
