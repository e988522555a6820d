"""Retried submissions: one canonical form of a request body, its hash, and what differs.

A submission retried under the same Idempotency-Key or partner reference gets the first
answer only when it is the same submission; a different body under a used key or reference is
refused (409), naming the fields that differ, as payment APIs refuse a reused key. The body is
compared by the SHA-256 of its canonical JSON (the validated model, dumped in JSON mode, keys
sorted): two bodies that validate to the same model are the same submission whatever their
spacing, key order or defaults, and the hash holds nothing of the child in clear.

A case's workflow keeps the same, field by field (``field_hashes``), for the decisions it
records under a caller's id: a decision sent again under its id with another body is refused
naming the fields that differ (docs/decisions/0019).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel


def canonical(body: BaseModel, exclude: set[str] | None = None) -> dict[str, Any]:
    """The body as it was validated: what is stored, hashed and compared."""
    return body.model_dump(mode="json", exclude=exclude)


def body_hash(doc: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a canonical body."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def differing_fields(first: Any, again: Any, prefix: str = "") -> list[str]:
    """The fields (dotted paths, objects followed down; a list is one field) whose values
    differ between two canonical bodies, in order. Names only: never the values."""
    if isinstance(first, Mapping) and isinstance(again, Mapping):
        out: list[str] = []
        for key in sorted(set(first) | set(again)):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += differing_fields(first.get(key), again.get(key), path)
        return out
    return [] if first == again else [prefix or "body"]


def field_hashes(doc: Mapping[str, Any]) -> dict[str, str]:
    """SHA-256 (hex) of each top-level field of a canonical body: kept where the body itself
    may not be (a workflow's state), so a body sent again can be told apart field by field."""
    return {key: body_hash({key: value}) for key, value in doc.items()}


def differing_hashes(first: Mapping[str, str], again: Mapping[str, str]) -> list[str]:
    """The fields whose hashes (``field_hashes``) differ, or that one body has and the other
    has not, in order."""
    return [k for k in sorted(set(first) | set(again)) if first.get(k) != again.get(k)]
