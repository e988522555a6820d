"""Field-level encryption at rest, and blind indexes to find encrypted values without
decrypting them. One crypto approach in the house: the keyring of ``mset_platform.codec``
(AES-256-GCM, key ids, rotation), used on a field instead of a Temporal payload.

A sealed field is ``(key id, nonce + ciphertext)``. The row's id and the field's name are the
associated data, so a ciphertext copied into another row, or into another field, does not
decrypt. Rotation: a new key is added to the ring and made current; new writes use it, old
rows still open under their own key id, and ``reseal`` moves a row to the current key.

A blind index is an HMAC-SHA-256 of a normalised value under a key of its own (not one of the
ring's: the index key cannot rotate without re-indexing every row, the encryption keys can).
Equal values give equal indexes, so an equality lookup (the same NHS number, the same
blocking key) needs no decryption; without the key the index tells nothing, even of a value
with few possibilities such as a date of birth.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mset_platform.codec import KEY_BYTES, NONCE_BYTES, Keyring

# Built-in development keys, refused in production (the referral service's settings).
DEV_FIELD_KEY_ID = "dev-fields-not-for-production"
DEV_FIELD_KEYRING = Keyring(
    current=DEV_FIELD_KEY_ID, keys={DEV_FIELD_KEY_ID: b"mset-dev-field-key-not-secret-!!"}
)
DEV_INDEX_KEY = b"mset-dev-blind-index-not-secret!"
# 128 bits of the HMAC: collisions between different values are negligible at any size a
# partnership reaches, and the column stays short.
INDEX_HEX = 32


class FieldUnreadable(Exception):
    """A sealed field that cannot be opened: its key id is not in the ring, or it was altered
    (or moved to another row or field)."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    data: bytes


@dataclass(frozen=True)
class FieldCipher:
    keyring: Keyring
    _aead: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_aead", {k: AESGCM(v) for k, v in self.keyring.keys.items()})

    @property
    def current(self) -> str:
        return self.keyring.current

    def seal(self, plain: bytes, context: str) -> Sealed:
        """``context``: the row and field the value belongs to (associated data)."""
        nonce = os.urandom(NONCE_BYTES)
        key_id = self.keyring.current
        data = self._aead[key_id].encrypt(nonce, plain, _aad(key_id, context))
        return Sealed(key_id, nonce + data)

    def open(self, sealed: Sealed, context: str) -> bytes:
        aead = self._aead.get(sealed.key_id)
        if aead is None:
            raise FieldUnreadable(
                f"sealed under key id {sealed.key_id!r}, which the ring does not hold: keep "
                "retired keys until every row is resealed"
            )
        try:
            return aead.decrypt(
                sealed.data[:NONCE_BYTES], sealed.data[NONCE_BYTES:], _aad(sealed.key_id, context)
            )
        except InvalidTag:
            raise FieldUnreadable(
                "a sealed field does not authenticate: altered or moved"
            ) from None

    def reseal(self, sealed: Sealed, context: str) -> Sealed | None:
        """The field under the current key, or None when it already is."""
        if sealed.key_id == self.keyring.current:
            return None
        return self.seal(self.open(sealed, context), context)


def _aad(key_id: str, context: str) -> bytes:
    return f"{key_id}\x1f{context}".encode()


@dataclass(frozen=True)
class BlindIndex:
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < KEY_BYTES:
            raise ValueError(f"a blind-index key is at least {KEY_BYTES} bytes")

    def of(self, kind: str, value: str) -> str:
        """The index of ``value`` (already normalised) as a ``kind`` of key."""
        mac = hmac.new(self.key, f"{kind}\x1f{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:INDEX_HEX]
