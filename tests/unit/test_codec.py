"""The payload codec and its keyring: what reaches Temporal is ciphertext under the current
key; older keys still decrypt; an unknown key id or an altered payload is refused; the keys
come from settings, and outside development a process without keys refuses to start."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.api.common.v1 import Payload

from mset_platform.codec import (
    DEV_KEY,
    DEV_KEY_ID,
    DEV_KEYRING,
    ENCRYPTED_ENCODING,
    KEY_ID,
    EncryptionCodec,
    Keyring,
    KeyringError,
    NoPayloadKeys,
    PayloadTampered,
    UnknownKeyId,
)
from mset_platform.settings import ServiceSettings
from mset_platform.temporal import data_converter

SECRET = "Planted-Rationale-Zebra-7731: the child's uncle's flat on Mill Lane"


def ring(*ids: str, current: str | None = None) -> Keyring:
    return Keyring(current=current or ids[0], keys={i: os.urandom(32) for i in ids})


async def encode(codec: EncryptionCodec, text: str) -> Payload:
    plain = data_converter(DEV_KEYRING).payload_converter.to_payloads([text])
    [sealed] = await codec.encode(plain)
    return sealed


async def decode_text(codec: EncryptionCodec, payload: Payload) -> str:
    [plain] = await codec.decode([payload])
    value = data_converter(DEV_KEYRING).payload_converter.from_payloads([plain], [str])[0]
    assert isinstance(value, str)
    return value


async def test_a_payload_round_trips_and_is_ciphertext_in_between() -> None:
    keys = ring("2026-05")
    codec = EncryptionCodec(keys)
    sealed = await encode(codec, SECRET)
    assert sealed.metadata["encoding"] == ENCRYPTED_ENCODING
    assert sealed.metadata[KEY_ID] == b"2026-05"
    assert b"Zebra" not in sealed.SerializeToString()
    assert await decode_text(codec, sealed) == SECRET
    # A fresh nonce every time: the same value never gives the same ciphertext.
    assert (await encode(codec, SECRET)).data != sealed.data


async def test_after_rotation_the_new_key_encrypts_and_the_old_still_decrypts() -> None:
    old = ring("2025-11")
    written_before = await encode(EncryptionCodec(old), SECRET)
    rotated = Keyring(current="2026-05", keys={**old.keys, "2026-05": os.urandom(32)})
    codec = EncryptionCodec(rotated)
    assert await decode_text(codec, written_before) == SECRET
    written_after = await encode(codec, SECRET)
    assert written_after.metadata[KEY_ID] == b"2026-05"
    # The old key alone cannot read what the new one wrote: it really is a different key.
    with pytest.raises(UnknownKeyId):
        await EncryptionCodec(old).decode([written_after])


async def test_an_unknown_key_id_is_refused_saying_which() -> None:
    sealed = await encode(EncryptionCodec(ring("retired-2024")), SECRET)
    with pytest.raises(UnknownKeyId, match=r"'retired-2024'.*does not hold"):
        await EncryptionCodec(ring("2026-05")).decode([sealed])


async def test_altered_ciphertext_is_refused() -> None:
    keys = ring("2026-05")
    sealed = await encode(EncryptionCodec(keys), SECRET)
    data = bytearray(sealed.data)
    data[-20] ^= 0x01
    altered = Payload(metadata=dict(sealed.metadata), data=bytes(data))
    with pytest.raises(PayloadTampered):
        await EncryptionCodec(keys).decode([altered])


async def test_a_payload_relabelled_with_another_key_id_is_refused() -> None:
    # Both keys are in the ring: without the key id bound into the ciphertext, a relabelled
    # payload would only fail by luck of the key; here it fails because the id is checked.
    keys = Keyring(current="a", keys={"a": os.urandom(32), "b": os.urandom(32)})
    sealed = await encode(EncryptionCodec(keys), SECRET)
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"b"}, data=sealed.data)
    with pytest.raises(PayloadTampered):
        await EncryptionCodec(keys).decode([relabelled])


async def test_a_payload_that_was_never_encrypted_decodes_as_it_is() -> None:
    plain = data_converter(DEV_KEYRING).payload_converter.to_payloads(["written before"])
    assert await EncryptionCodec(ring("k")).decode(plain) == plain


async def test_the_data_converter_encrypts_what_it_converts() -> None:
    converter = data_converter(ring("k"))
    [payload] = await converter.encode([SECRET])
    assert b"Zebra" not in payload.SerializeToString()
    assert await converter.decode([payload], [str]) == [SECRET]


# --- the keyring and where it comes from ------------------------------------------------


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_a_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(KeyringError, match="16 bytes; AES-256 needs 32"):
        Keyring(current="k", keys={"k": os.urandom(16)})


def test_the_current_key_must_be_in_the_ring() -> None:
    with pytest.raises(KeyringError, match="current key id 'x'"):
        Keyring(current="x", keys={"k": os.urandom(32)})


def test_a_key_file_round_trips() -> None:
    keys = Keyring(current="b", keys={"a": os.urandom(32), "b": os.urandom(32)})
    again = Keyring.from_json(keys.to_json())
    assert again == keys


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ('{"keys": []}', '"keys"'),
        ('{"keys": {"a": "!!!"}, "current": "a"}', "not valid base64"),
        (f'{{"keys": {{"a": "{b64(os.urandom(32))}", "b": "{b64(os.urandom(32))}"}}}}', "current"),
    ],
)
def test_a_bad_key_file_is_refused_saying_why(text: str, says: str) -> None:
    with pytest.raises(KeyringError, match=says):
        Keyring.from_json(text)


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings.model_validate(values)


@pytest.fixture
def no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test session names its own key file (tests/conftest.py); these tests set their own.
    for name in ("MSET_CODEC_KEY_FILE", "MSET_CODEC_KEYS", "MSET_CODEC_KEY_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_key_in_env")
@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_development_a_process_without_keys_refuses_to_start(environment: str) -> None:
    with pytest.raises(ValidationError, match=r"MSET_CODEC_KEY_FILE .* must be set outside"):
        settings(environment=environment)


@pytest.mark.usefixtures("no_key_in_env")
def test_in_development_the_built_in_key_is_used() -> None:
    assert settings(environment="development").codec_keyring() == DEV_KEYRING


@pytest.mark.usefixtures("no_key_in_env")
@pytest.mark.parametrize(
    "keys",
    [f"{DEV_KEY_ID}={b64(DEV_KEY)}", f"mine={b64(DEV_KEY)}"],
    ids=["its id", "its bytes under another id"],
)
def test_production_refuses_the_built_in_development_key(keys: str) -> None:
    with pytest.raises(ValidationError, match="built-in development payload key"):
        settings(environment="production", codec_keys=keys)


@pytest.mark.usefixtures("no_key_in_env")
def test_keys_from_a_file_with_the_current_one_chosen_by_setting(tmp_path: Path) -> None:
    file = tmp_path / "keys.json"
    keys = Keyring(current="old", keys={"old": os.urandom(32), "new": os.urandom(32)})
    file.write_text(keys.to_json())
    ring_ = settings(environment="production", codec_key_file=file).codec_keyring()
    assert ring_ == keys
    rotated = settings(environment="production", codec_key_file=file, codec_key_id="new")
    assert rotated.codec_keyring() == Keyring(current="new", keys=keys.keys)


@pytest.mark.usefixtures("no_key_in_env")
def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = os.urandom(32), os.urandom(32)
    monkeypatch.setenv("MSET_CODEC_KEYS", f"a={b64(a)},b={b64(b)}")
    monkeypatch.setenv("MSET_CODEC_KEY_ID", "b")
    got = ServiceSettings(environment="production").codec_keyring()
    assert got == Keyring(current="b", keys={"a": a, "b": b})


@pytest.mark.usefixtures("no_key_in_env")
def test_two_keys_in_the_environment_must_say_which_encrypts() -> None:
    keys = f"a={b64(os.urandom(32))},b={b64(os.urandom(32))}"
    with pytest.raises(ValidationError, match="say which encrypts now"):
        settings(environment="production", codec_keys=keys)


@pytest.mark.usefixtures("no_key_in_env")
def test_a_missing_key_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"cannot read the key file .*nope\.json"):
        settings(environment="production", codec_key_file=tmp_path / "nope.json")


@pytest.mark.usefixtures("no_key_in_env")
async def test_a_process_that_needs_no_keys_starts_without_and_refuses_any_payload() -> None:
    from mset_platform.migrations import MigrationSettings
    from mset_platform.search_attributes import SearchAttributeSettings

    migration = MigrationSettings.model_validate(
        {"environment": "production", "database_url": "sqlite://"}
    )
    assert migration.codec_keyring() is None
    job = SearchAttributeSettings.model_validate({"environment": "production"})
    assert job.codec_keyring() is None
    converter = data_converter(job.codec_keyring())
    with pytest.raises(NoPayloadKeys):
        await converter.encode(["anything"])
