"""The process's durable-rules host: loads rulesets and runs one session per evaluation.

Why not ``durable.lang.get_host()``: its ``Host`` starts two background timer threads that
call into the engine every 0.2 s to dispatch queued actions and timers, and the engine has no
locks. Triage needs neither queued actions nor timers, so this host drives the same engine
(the ``durable_rules_engine`` extension that ``durable.engine`` wraps) directly, from the
caller's thread only:

- One host per process, and every session runs under one ``threading.Lock``: the engine is
  not thread-safe and never releases the GIL, so serialising costs no parallelism.
- The engine keeps session state in a fixed table of 1024 sessions; the 1025th distinct
  ``sid`` that was never deleted raises ``MemoryError``. Each evaluation uses a fresh ``sid``
  and deletes its state in ``finally``; with calls serialised at most one session is ever
  alive, so the limit cannot be reached whatever the load. If a delete ever failed the
  ruleset is rebuilt, which empties its table.
- Deleting a session in which no action was ever started crashes the process: the engine
  never initialises a new session's action buffers (``createStateNode`` in state.c), and
  ``delete_state`` frees them. Starting and completing an action sets them to NULL, and
  deleting a session leaves them NULL for the next session in that slot. So every ruleset
  gets a sentinel rule: the host fires it once when the ruleset is created, and again before
  deleting any session that fired nothing.
- Rulesets cannot change once created, so each rules version is its own ruleset.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import durable_rules_engine as dre

log = logging.getLogger("mset.triage.engine")

# The engine's answer codes for an assert (durable/engine.py ``_handle_result``).
_HANDLED = 0
_NOT_HANDLED = 1  # some fact matched no rule: normal for facts, e.g. an on-time action
_OBSERVED = 2  # a fact id seen before in this session: a bug in fact numbering
_STATE_NOT_FOUND = "error code: 309"

# The sentinel rule and fact (see the module docstring). Rule ids of the domain never start
# with "host.", and the sentinel fact is never asserted while the domain's rules run.
SENTINEL_RULE = "host.sentinel"
_SENTINEL_FACT = "host.sentinel"

# Compact and without the circular-reference walk: facts are flat dicts built per call.
# NaN and infinity are refused: the engine's parser knows neither.
_json = json.JSONEncoder(separators=(",", ":"), check_circular=False, allow_nan=False).encode

# A JSON string (kept as it is), or a number with an exponent: the scan meets a number at
# its first digit, so the whole number is matched, fraction included.
_STRING_OR_EXPONENT = re.compile(r'("(?:[^"\\]|\\.)*")|(-?\d+)(\.\d+)?([eE][-+]?\d+)')


def _with_fraction(m: re.Match[str]) -> str:
    if m[1] is not None:
        return m[1]
    return f"{m[2]}{m[3] or '.0'}{m[4]}"


def _encode(facts: Any) -> str:
    """Facts (or a ruleset) as JSON the engine can read.

    durable-rules' parser reads ``3.4e-05`` but not ``1e-05``: a number with an exponent and
    no fraction ends its parse of the whole batch, so no fact is asserted, and
    ``assert_facts`` still answers "handled" with an uninitialised state offset, which
    ``start_action_for_state`` then dereferences (the suite's intermittent segfault: Python
    writes a float such as 1e-05 days, 0.864 s, exactly that way). Writing the mantissa
    with a fraction (``1.0e-05``) keeps the value and the parse.
    """
    text = _json(facts)
    if "e" not in text and "E" not in text:
        return text
    return _STRING_OR_EXPONENT.sub(_with_fraction, text)


# Which facts a rule fired on: the engine answers with the rule's name and the matched facts
# as JSON. The session already holds those facts by id, so reading the ids is enough, and
# three times cheaper than decoding the whole answer. In JSON only a key is followed by a
# colon, and quotes inside strings are escaped, so '"id":' is always a fact's id key.
_FACT_ID = re.compile(r'"id":(\d+)')

Fired = Callable[[str, list[dict[str, Any]]], list[dict[str, Any]] | None]


class RulesEngineError(Exception):
    """The rules engine refused an operation (a defect, not bad input)."""


class Session:
    """One evaluation's working memory. Created only by ``RulesHost.session``."""

    def __init__(self, handle: int, sid: str) -> None:
        self._handle = handle
        self.sid = sid
        self._next_id = itertools.count(1)
        self._facts: dict[int, dict[str, Any]] = {}
        self._state: int | None = None
        self.started = False
        self.fired_any = False

    def assert_facts(self, facts: list[dict[str, Any]]) -> None:
        if not facts:
            return
        for fact in facts:
            fact["sid"] = self.sid
            fact["id"] = fact_id = next(self._next_id)
            self._facts[fact_id] = fact
        self.started = True  # from here the engine may hold state for this sid
        code, state = dre.assert_facts(self._handle, _encode(facts))
        if code not in (_HANDLED, _NOT_HANDLED):
            raise RulesEngineError(f"assert_facts answered {code} in session {self.sid}")
        self._state = state

    def run(self, on_fire: Fired) -> None:
        """Fire every rule whose conditions hold, until none is left. ``on_fire`` gets the rule
        name and the facts it matched (one per condition of the rule); the facts it returns are
        asserted before the next rule fires (forward chaining), so rules can match on other
        rules' conclusions."""
        if self._state is None:
            return
        state = self._state
        first = dre.start_action_for_state(self._handle, state)
        if not first:
            return
        self.fired_any = True
        # The first answer is (state, message); the next ones are the message alone:
        # '{"<rule>":{"<alias>":{<fact>},...}}'. Rule names hold no quote.
        message: str | None = first[1]
        facts = self._facts
        while message:
            rule = message[2 : message.index('"', 2)]
            matched = [facts[int(n)] for n in _FACT_ID.findall(message)]
            try:
                new_facts = on_fire(rule, matched)
                if new_facts:
                    self.assert_facts(new_facts)
            except BaseException:
                dre.abandon_action(self._handle, state)
                raise
            message = dre.complete_and_start_action(self._handle, state)

    def fire_sentinel(self) -> None:
        """Start and complete at least one action, so the session can be deleted safely."""
        self.assert_facts([{"t": _SENTINEL_FACT}])
        self.run(lambda rule, matched: None)


class RulesHost:
    """Owns the engine's rulesets for this process and serialises every call into them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._definitions: dict[str, str] = {}
        self._handles: dict[str, int] = {}
        self._sids = itertools.count(1)
        self.sessions_opened = 0
        self.sessions_deleted = 0

    def register(self, name: str, definition: dict[str, Any]) -> None:
        with self._lock:
            if name in self._handles:
                raise RulesEngineError(f"ruleset {name} is already loaded (rules cannot change)")
            if SENTINEL_RULE in definition:
                raise RulesEngineError(f"rule id {SENTINEL_RULE} is reserved for the host")
            sentinel = {"all": [{"m": {"t": _SENTINEL_FACT}}]}
            text = _encode({**definition, SENTINEL_RULE: sentinel})
            self._definitions[name] = text
            self._handles[name] = self._create(name)

    def _create(self, name: str) -> int:
        handle: int = dre.create_ruleset(name, self._definitions[name])
        # Make the session slot every later (serialised) session will use safe to delete.
        session = Session(handle, "host-warm-up")
        session.fire_sentinel()
        dre.delete_state(handle, session.sid)
        return handle

    def names(self) -> list[str]:
        return sorted(self._handles)

    @contextmanager
    def session(self, name: str) -> Iterator[Session]:
        """A fresh session of ruleset ``name``, its state deleted when the block ends."""
        with self._lock:
            handle = self._handles[name]
            sid = str(next(self._sids))
            self.sessions_opened += 1
            session = Session(handle, sid)
            try:
                yield session
            finally:
                if session.started:
                    self._delete(name, handle, session)

    def _delete(self, name: str, handle: int, session: Session) -> None:
        sid = session.sid
        try:
            if not session.fired_any:
                session.fire_sentinel()
            dre.delete_state(handle, sid)
            self.sessions_deleted += 1
        except Exception as exc:
            if _STATE_NOT_FOUND in str(exc):  # the engine never created it: nothing to free
                return
            # A session left behind would count towards the 1024 limit forever: rebuild the
            # ruleset instead, which starts with an empty session table.
            log.exception("could not delete rules session %s of %s; rebuilding it", sid, name)
            self._rebuild(name, handle)

    def _rebuild(self, name: str, handle: int) -> None:
        try:
            dre.delete_ruleset(handle)
        except Exception:
            log.exception("could not delete ruleset %s", name)
        self._handles[name] = self._create(name)

    def close(self) -> None:
        with self._lock:
            for name, handle in self._handles.items():
                try:
                    dre.delete_ruleset(handle)
                except Exception:
                    log.exception("could not delete ruleset %s", name)
            self._handles.clear()
