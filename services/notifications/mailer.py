"""E-mail for urgent escalations, sent from the outbox table by SMTP.

Subject and body carry codes and a link to the inbox item, never the child's details
(domain.compose_email). Recipients are role mailboxes from settings (``email_recipients``,
e.g. ``{"manager": "mset-managers@northshire.example"}``): identity holds no e-mail addresses.
A message that cannot be sent is retried with backoff, then marked failed.

Sending is at least once (docs/decisions/0018): a reply lost to a time-out, or a worker
killed between the server's acceptance and recording it, sends the message again. Every
attempt has the same Message-ID, from the outbox row's id: mail systems and clients treat
messages with one Message-ID as one message.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import uuid
from datetime import timedelta
from email.message import EmailMessage as MimeMessage
from email.utils import parseaddr

from services.notifications.disclosures import email_disclosed
from services.notifications.domain import backoff_seconds
from services.notifications.polling import PollingLoop
from services.notifications.settings import NotificationsSettings
from services.notifications.store import EmailClaim, EmailMessage, Store, now_utc

log = logging.getLogger("mset.notifications.mailer")

BATCH = 20  # e-mails sent per tick at most


def message_id(email_id: uuid.UUID, sender: str) -> str:
    """The Message-ID of every attempt at one e-mail (RFC 5322 §3.6.4: ``<left@right>``,
    the right-hand side the sender's domain)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "mset-flow.invalid"
    return f"<{email_id}@{domain}>"


def mime(msg: EmailMessage, sender: str) -> MimeMessage:
    m = MimeMessage()
    m["From"] = sender
    m["To"] = msg.recipient
    m["Subject"] = msg.subject
    # The same on every attempt, so a receiving system drops a copy it has already.
    m["Message-ID"] = message_id(msg.id, sender)
    m["X-MSET-Inbox-Item"] = str(msg.inbox_item_id)
    m.set_content(msg.body)
    return m


class Mailer(PollingLoop):
    """Sends due e-mails from the outbox on its own thread."""

    name = "mailer"

    def __init__(self, store: Store, settings: NotificationsSettings, stop: threading.Event):
        super().__init__(stop, settings.dispatch_poll_seconds)
        self.store = store
        self.s = settings

    def tick(self) -> int:
        """Send due e-mails, claiming each just before it is sent, up to a batch."""
        lease = timedelta(seconds=self.s.smtp_timeout_seconds * 3 + 30)
        done = 0
        while done < BATCH and not self.stop.is_set():
            claim = self.store.claim_next_email(lease)
            if claim is None:
                break
            if claim.in_doubt:
                log.warning(
                    "e-mail %s: attempt %d was never recorded (its sender stopped); sending "
                    "it again, with the same Message-ID",
                    claim.message.id,
                    claim.attempt - 1,
                )
            # Noted for the information-sharing ledger before it is sent (ADR 0023).
            item = self.store.email_case(claim.message.inbox_item_id)
            if item is not None:
                self.store.note_disclosures([email_disclosed(claim.message, item)])
            try:
                self._send(claim.message)
                error = None
            except (smtplib.SMTPException, OSError) as exc:
                error = type(exc).__name__
                log.warning("e-mail %s not sent (%s); will retry", claim.message.id, error)
            self._record(claim, error)
            done += 1
        return done

    def _send(self, msg: EmailMessage) -> None:
        with smtplib.SMTP(
            self.s.smtp_host, self.s.smtp_port, timeout=self.s.smtp_timeout_seconds
        ) as smtp:
            if self.s.smtp_starttls:
                smtp.starttls()
            if self.s.smtp_username and self.s.smtp_password:
                smtp.login(self.s.smtp_username, self.s.smtp_password)
            smtp.send_message(mime(msg, self.s.smtp_from))

    def _record(self, claim: EmailClaim, error: str | None) -> None:
        now = now_utc()
        with self.store.session() as s:
            m = s.get(EmailMessage, claim.message.id, with_for_update=True)
            if m is None:
                return
            if m.claim_token != claim.token:
                # The lease ran out mid-send and another sender claimed it: that claim decides.
                log.warning(
                    "e-mail %s: attempt %d ended after its lease ran out (%s)",
                    m.id,
                    claim.attempt,
                    error or "sent",
                )
                return
            m.claim_token = None
            m.lease_until = None
            m.last_error = error
            if error is None:
                m.status = "sent"
                m.sent_at = now
                m.next_attempt_at = None
            elif claim.attempt >= self.s.email_max_attempts:
                m.status = "failed"
                m.next_attempt_at = None
            else:
                delay = backoff_seconds(claim.attempt, self.s.email_backoff_seconds, 3600.0)
                m.next_attempt_at = now + timedelta(seconds=delay)
