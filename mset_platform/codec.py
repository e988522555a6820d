"""Encrypted Temporal payloads: AES-256-GCM, the key id in each payload's metadata.

Workflow history is kept by the Temporal server, outside the services that own the data,
and read by whoever can reach its UI or API. Every payload (workflow and activity inputs and
results, update and signal arguments, memos) is encrypted by the client or worker that
writes it, with the keyring's current key; the server stores ciphertext only. An ops user
reads history through the codec server (``mset_platform.codec_server``), which holds the
keys and asks for a credential.

Rotation: a keyring holds every key still needed to read history, each under its own id, and
names the one that encrypts now. A new key is added under a new id and made current; payloads
written under older ids still decrypt as long as their keys stay in the ring (see
docs/operations.md, "Rotating the payload keys").

A payload that is not encrypted (history written before encryption was switched on, such as
the saved histories the replay test reads) decodes as it is; one encrypted under a key id
the ring does not hold, or whose ciphertext or key id was altered, is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

# Metadata of an encrypted payload (the names the Temporal samples and codec servers use).
ENCODING = "encoding"
ENCRYPTED_ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce: random per payload
MAX_KEY_ID = 64

# The key every process uses in development (and in the test tier) when none is configured,
# so one service started on its own works unconfigured. ``make dev`` generates a key of its
# own instead (deploy/stack.py). Refused in production (ServiceSettings).
DEV_KEY_ID = "dev-builtin-not-for-production"
DEV_KEY = b"mset-dev-payload-key-not-secret!"
assert len(DEV_KEY) == KEY_BYTES


class KeyringError(ValueError):
    """A keyring that cannot be used: a key of the wrong length, no current key, bad file."""


class UnknownKeyId(Exception):
    """A payload was encrypted under a key id this keyring does not hold."""


class PayloadTampered(Exception):
    """A payload's ciphertext (or its key id) does not authenticate: altered or corrupt."""


class NoPayloadKeys(Exception):
    """A process started without payload keys met a payload."""


def _key_id_ok(key_id: str) -> bool:
    return 0 < len(key_id) <= MAX_KEY_ID and all(c.isalnum() or c in "-_." for c in key_id)


@dataclass(frozen=True)
class Keyring:
    """Key id → 32-byte key, and the id that encrypts now."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            if not _key_id_ok(key_id):
                raise KeyringError(
                    f"key id {key_id!r}: 1-{MAX_KEY_ID} letters, digits, '-', '_' or '.'"
                )
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}")
        if self.current not in self.keys:
            raise KeyringError(f"the current key id {self.current!r} has no key in the ring")

    @classmethod
    def generate(cls, key_id: str) -> Keyring:
        return cls(current=key_id, keys={key_id: os.urandom(KEY_BYTES)})

    # --- the key file and the environment ---------------------------------------------------

    @classmethod
    def from_json(cls, text: str, where: str = "the key file") -> Keyring:
        """``{"current": "<id>", "keys": {"<id>": "<base64 of 32 bytes>", ...}}``."""
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise KeyringError(f"{where} is not JSON ({exc.msg})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), dict):
            raise KeyringError(f'{where} must be {{"current": "<id>", "keys": {{"<id>": ...}}}}')
        keys = {str(k): _b64_key(str(k), v, where) for k, v in doc["keys"].items()}
        current = doc.get("current")
        if current is None and len(keys) == 1:
            current = next(iter(keys))
        if not isinstance(current, str):
            raise KeyringError(f'{where} must name the key that encrypts now ("current")')
        return cls(current=current, keys=keys)

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        try:
            text = path.read_text()
        except OSError as exc:
            raise KeyringError(f"cannot read the key file {path}: {exc.strerror}") from None
        return cls.from_json(text, where=f"the key file {path}")

    @classmethod
    def from_env(cls, spec: str, current: str | None, where: str = "MSET_CODEC_KEYS") -> Keyring:
        """``<id>=<base64>,<id>=<base64>``; ``current`` names the one that encrypts (it may
        be left out when there is one key)."""
        keys: dict[str, bytes] = {}
        for n, item in enumerate(i.strip() for i in spec.split(",")):
            key_id, sep, value = item.partition("=")
            if not item or not sep:
                raise KeyringError(f"{where}: item {n} is not <key id>=<base64 key>")
            keys[key_id.strip()] = _b64_key(key_id.strip(), value.strip(), where)
        if current is None:
            if len(keys) != 1:
                raise KeyringError(f"{where} holds {len(keys)} keys: say which encrypts now")
            current = next(iter(keys))
        return cls(current=current, keys=keys)

    def to_json(self) -> str:
        return json.dumps(
            {
                "current": self.current,
                "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            },
            indent=2,
        )


def _b64_key(key_id: str, value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise KeyringError(f"{where}: key {key_id!r} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{where}: key {key_id!r} is not valid base64") from None


DEV_KEYRING = Keyring(current=DEV_KEY_ID, keys={DEV_KEY_ID: DEV_KEY})


class NoKeysCodec(PayloadCodec):
    """The codec of a process that talks to Temporal but never reads or writes a payload (the
    search-attribute Job), started without keys: a payload it meets is refused, never
    written or read in clear."""

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        raise NoPayloadKeys("this process holds no payload keys: it may not write payloads")

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        raise NoPayloadKeys("this process holds no payload keys: it may not read payloads")


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the keyring's current key; decrypts with the key its
    metadata names. The key id is bound into the ciphertext (associated data), so a payload
    relabelled with another id fails to decrypt rather than decrypting under a wrong key."""

    def __init__(self, keyring: Keyring) -> None:
        super().__init__()
        self._current = keyring.current
        self._aead = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._current.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={ENCODING: ENCRYPTED_ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING) != ENCRYPTED_ENCODING:
            return payload  # written before encryption was on: readable as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        aead = self._aead.get(key_id)
        if aead is None:
            raise UnknownKeyId(
                f"payload encrypted under key id {key_id!r}, which the keyring does not hold "
                f"(it holds {', '.join(sorted(self._aead))}): keep retired keys in the ring "
                "for as long as history written under them is kept"
            )
        data = payload.data
        try:
            plain = aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise PayloadTampered(
                f"payload under key id {key_id!r} does not authenticate: it was altered, "
                "or its key id was changed"
            ) from None
        return Payload.FromString(plain)
