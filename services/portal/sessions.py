"""Sessions and signing in, behind two small interfaces so that single sign-on can replace
the development token without touching a page.

A **session** is server-side: the browser holds only a random id in an HttpOnly,
SameSite=Lax cookie; the credential the services are called with (a staff token today, an
OpenID Connect access token later) stays here. A session starts anonymous (it carries the
CSRF token of the sign-in form), becomes signed in under a *new* id (so an id fixed before
sign-in is worthless after it), ends at sign-out, and ends by itself after
``idle`` without a request.

A **sign-in method** turns what the person proved into a ``SignedIn``: the credential to
call the services with and the principal the referral service says it belongs to. The
development method takes a staff token typed into a form (``TokenSignIn``); an OpenID
Connect method would take the authorisation code from the identity provider's redirect and
give the same ``SignedIn``. Pages only ever see ``Session.principal``.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from mset_contract.auth import Principal
from mset_platform.identity import Introspector

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    last_seen: datetime
    credential: str | None = None
    principal: Principal | None = None
    # One message for the next page shown (after a form is posted and redirected).
    flash: str | None = None
    # Why the previous session ended, for the sign-in page (idle time-out).
    notice: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.credential is not None and self.principal is not None

    def csrf_ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(self.csrf, sent)


class SessionStore(Protocol):
    """Where sessions live. The one here keeps them in the process; a store shared by every
    copy of the portal (a database table, Redis) implements the same four calls."""

    def start(self, *, notice: str | None = None) -> Session: ...

    def find(self, session_id: str) -> Session | None:
        """The live session with this id (its idle clock restarted), or None: unknown,
        ended, or idle for too long (then it is ended here)."""
        ...

    def save(self, session: Session) -> None: ...

    def end(self, session_id: str) -> None: ...


class IdleExpired(Exception):
    """The session was idle for longer than the time-out (raised by ``find_or_expired``)."""


@dataclass
class MemorySessionStore:
    """Sessions in this process's memory: one portal process (the local stack, a single
    replica). Ended by sign-out, by the idle time-out, or when the process restarts."""

    idle: timedelta
    clock: Clock = utc_now
    _sessions: dict[str, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, *, notice: str | None = None) -> Session:
        s = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            last_seen=self.clock(),
            notice=notice,
        )
        with self._lock:
            self._sweep()
            self._sessions[s.id] = s
        return s

    def find(self, session_id: str) -> Session | None:
        try:
            return self.find_or_expired(session_id)
        except IdleExpired:
            return None

    def find_or_expired(self, session_id: str) -> Session | None:
        now = self.clock()
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                return None
            if now - s.last_seen > self.idle:
                del self._sessions[session_id]
                raise IdleExpired(session_id)
            s = replace(s, last_seen=now)
            self._sessions[session_id] = s
            return s

    def save(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.id] = session

    def end(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _sweep(self) -> None:
        now = self.clock()
        for sid in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle]:
            del self._sessions[sid]


@dataclass(frozen=True)
class SignedIn:
    credential: str
    principal: Principal


class SignInRefused(Exception):
    """What the person gave does not sign them in; the message says why, in their words."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class SignInMethod(Protocol):
    async def sign_in(self, form: dict[str, str]) -> SignedIn: ...


class TokenSignIn:
    """Development sign-in: a member of staff pastes their own staff token (``mset user
    create`` prints it; the local stack's demo tokens are in its data folder). The referral
    service, which owns identity, says whose it is."""

    def __init__(self, introspector: Introspector) -> None:
        self._introspector = introspector

    async def sign_in(self, form: dict[str, str]) -> SignedIn:
        token = form.get("token", "").strip()
        if not token:
            raise SignInRefused("token", "Enter your staff token")
        if len(token) > 256 or not token.isascii() or not token.isprintable() or " " in token:
            raise SignInRefused("token", "Enter the staff token exactly as it was given to you")
        principal = await self._introspector.principal(token)
        if principal is None:
            raise SignInRefused("token", "The staff token is not valid, or no longer valid")
        if principal.kind != "user" or principal.role is None:
            raise SignInRefused(
                "token",
                "This is an agency's system key, not a staff token: sign in with your own token",
            )
        return SignedIn(credential=token, principal=principal)
