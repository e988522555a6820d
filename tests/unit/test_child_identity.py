"""The child's identity: NHS numbers checked by their modulus-11 digit, postcodes held one
way, identity fields sealed at rest under key ids that rotate, blind indexes that find equal
values without the key to read them."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from mset_contract.identity import NhsNumber, Postcode, nhs_check_digit
from mset_contract.referral import ReferralCreate, referral_example, referral_examples
from mset_platform.codec import Keyring
from mset_platform.field_crypto import BlindIndex, FieldCipher, FieldUnreadable
from services.referral.child_identity import ChildIdentity, IdentityStore, without_identity
from services.referral.migrate import MIGRATIONS
from services.referral.reseal import reseal
from services.referral.settings import ReferralSettings
from services.referral.store import Agency, Referral, Store

NHS: TypeAdapter[str] = TypeAdapter(NhsNumber)
POSTCODE: TypeAdapter[str] = TypeAdapter(Postcode)


@pytest.mark.parametrize(
    ("given", "held"),
    [
        ("9434765919", "9434765919"),  # the NHS's own published example
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        ("9990000018", "9990000018"),
        ("4010232137", "4010232137"),
    ],
)
def test_a_valid_nhs_number_is_held_as_its_ten_digits(given: str, held: str) -> None:
    assert NHS.validate_python(given) == held


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ("9434765918", "check digit"),  # one digit wrong
        ("9434765991", "check digit"),  # the last two swapped
        ("4934765919", "check digit"),  # the first two swapped
        ("943476591", "10 digits"),
        ("94347659190", "10 digits"),
        ("94347659l9", "10 digits"),
        ("1111111111", "repeated"),
    ],
)
def test_a_mistyped_nhs_number_is_refused_saying_why(given: str, why: str) -> None:
    with pytest.raises(ValidationError) as err:
        NHS.validate_python(given)
    assert why in str(err.value)


def test_a_check_digit_of_ten_makes_no_nhs_number() -> None:
    # Nine digits whose weighted sum leaves 1 mod 11 would need a check digit of 10.
    nine = next(
        f"{n:09d}" for n in range(100000000, 100001000) if nhs_check_digit(f"{n:09d}") is None
    )
    for last in "0123456789":
        with pytest.raises(ValidationError):
            NHS.validate_python(nine + last)


def test_postcodes_are_held_upper_case_with_one_space_and_nonsense_is_refused() -> None:
    assert POSTCODE.validate_python("nt1 2ab") == "NT1 2AB"
    assert POSTCODE.validate_python("SW1A1AA") == "SW1A 1AA"
    with pytest.raises(ValidationError, match="not a UK postcode"):
        POSTCODE.validate_python("12 High Street")


_POSTCODE_SCHEMA = POSTCODE.json_schema()


@settings(max_examples=300, derandomize=True)
@given(st.from_regex(_POSTCODE_SCHEMA["pattern"], fullmatch=True))
def test_a_postcode_the_schema_admits_is_accepted_and_one_it_refuses_is_refused(
    sent: str,
) -> None:
    """The OpenAPI's pattern and length are the postcode rule: a partner that follows the
    schema is never refused, and what the schema refuses is never stored."""
    admitted = len(sent) <= _POSTCODE_SCHEMA["maxLength"]
    if admitted:
        held = POSTCODE.validate_python(sent)
        assert held == held.upper() and held.count(" ") == 1
    else:
        with pytest.raises(ValidationError, match="not a UK postcode"):
            POSTCODE.validate_python(sent)
    for refused in (sent.replace(" ", "\t") + "\t", sent + " X"):
        with pytest.raises(ValidationError, match="not a UK postcode"):
            POSTCODE.validate_python(refused)


def test_the_identity_is_optional_and_a_bad_one_names_the_field() -> None:
    ReferralCreate.model_validate(referral_example())  # no identity: as partners send today
    high = referral_examples()["high risk"]
    tool = ReferralCreate.model_validate(high)
    assert tool.child.nhs_number == "9990000018"
    assert tool.child.name is not None and tool.child.name.known_as == "Jess"
    bad: dict[str, Any] = {**high, "child": {**high["child"], "nhs_number": "999 000 0019"}}
    with pytest.raises(ValidationError) as err:
        ReferralCreate.model_validate(bad)
    assert err.value.errors()[0]["loc"] == ("child", "nhs_number")
    digits: dict[str, Any] = {
        **high,
        "child": {**high["child"], "name": {"given": "Jess1ca", "family": "Marsh"}},
    }
    with pytest.raises(ValidationError) as err:
        ReferralCreate.model_validate(digits)
    assert err.value.errors()[0]["loc"][:3] == ("child", "name", "given")


def test_the_stored_tool_holds_no_identity() -> None:
    tool = ReferralCreate.model_validate(referral_examples()["high risk"])
    stored = without_identity(tool.model_dump(mode="json"))
    text = str(stored)
    assert "Marsh" not in text and "9990000018" not in text and "NT1 2AB" not in text
    assert stored["child"]["date_of_birth"] == tool.child.date_of_birth.isoformat()


def test_a_sealed_field_opens_under_its_key_after_rotation_and_nowhere_else() -> None:
    old = Keyring.generate("identity-2026-01")
    cipher = FieldCipher(old)
    row = str(uuid.uuid4())
    sealed = cipher.seal(b"Jessica Marsh", row)
    assert b"Jessica" not in sealed.data and sealed.key_id == "identity-2026-01"
    # Rotation: a new current key; the old one kept to read what it sealed.
    new = Keyring.generate("identity-2026-07")
    rotated = FieldCipher(Keyring(current=new.current, keys={**old.keys, **new.keys}))
    assert rotated.open(sealed, row) == b"Jessica Marsh"
    resealed = rotated.reseal(sealed, row)
    assert resealed is not None and resealed.key_id == "identity-2026-07"
    assert FieldCipher(new).open(resealed, row) == b"Jessica Marsh"
    # Moved to another row, or the key dropped too soon: refused, never garbage.
    with pytest.raises(FieldUnreadable, match="altered or moved"):
        rotated.open(sealed, str(uuid.uuid4()))
    with pytest.raises(FieldUnreadable, match="does not hold"):
        FieldCipher(new).open(sealed, row)


def test_a_blind_index_matches_equal_values_only_under_its_own_key() -> None:
    one, other = BlindIndex(b"k" * 32), BlindIndex(b"j" * 32)
    assert one.of("nhs", "9434765919") == one.of("nhs", "9434765919")
    assert one.of("nhs", "9434765919") != one.of("nhs", "9990000018")
    assert one.of("nhs", "9434765919") != other.of("nhs", "9434765919")
    assert one.of("nhs", "9434765919") != one.of("dob", "9434765919")
    assert "9434765919" not in one.of("nhs", "9434765919")


def test_production_refuses_the_built_in_identity_keys(tmp_path: Path) -> None:
    keys = tmp_path / "codec.json"
    keys.write_text(Keyring.generate("payload-1").to_json())
    production = {
        "environment": "production",
        "codec_key_file": str(keys),
        "service_token": "s" * 40,
    }
    with pytest.raises(ValidationError, match="identity keys are not set"):
        ReferralSettings.model_validate(production)
    ring = Keyring.generate("identity-1")
    given = ReferralSettings.model_validate(
        {
            **production,
            "identity_keys": f"identity-1={base64.b64encode(ring.keys['identity-1']).decode()}",
            "identity_index_key": base64.b64encode(b"x" * 32).decode(),
        }
    )
    assert given.identity_cipher().current == "identity-1"


def test_rotation_reseals_every_identity_under_the_new_key(tmp_path: Path) -> None:
    old, new = Keyring.generate("id-old"), Keyring.generate("id-new")
    b64 = {k: base64.b64encode(v).decode() for k, v in {**old.keys, **new.keys}.items()}
    url = f"sqlite:///{tmp_path / 'referral.db'}"
    before = ReferralSettings.model_validate(
        {"database_url": url, "identity_keys": f"id-old={b64['id-old']}"}
    )
    engine = MIGRATIONS.open(url)
    tool = ReferralCreate.model_validate(referral_examples()["high risk"])
    rid = uuid.uuid4()
    store = Store(engine)
    now = datetime.now(UTC)
    with store.session() as s:
        agency = Agency(id=uuid.uuid4(), name="A", type="health", created_at=now)
        s.add(agency)
        s.flush()
        s.add(
            Referral(
                id=rid, agency_id=agency.id, partner_reference="R", agency_child_ref="C",
                local_authority="northshire", stage="submitted", referrer_level="high",
                workflow_id=f"w-{rid}", tool={}, submitted_at=now, updated_at=now,
            )
        )  # fmt: skip
        s.flush()
        IdentityStore(before.identity_cipher(), before.identity_index()).add(s, rid, tool, now)
    engine.dispose()
    after = ReferralSettings.model_validate(
        {
            "database_url": url,
            "identity_keys": f"id-old={b64['id-old']},id-new={b64['id-new']}",
            "identity_key_id": "id-new",
        }
    )
    assert reseal(after) == 1
    assert reseal(after) == 0  # nothing left under the old key
    engine = MIGRATIONS.open(url)
    with Store(engine).session() as s:
        row = s.get(ChildIdentity, rid)
        assert row is not None and row.key_id == "id-new"
        shown = IdentityStore(after.identity_cipher(), after.identity_index()).public(row)
        assert shown.nhs_number == "9990000018" and shown.postcode == "NT1 2AB"
    engine.dispose()
