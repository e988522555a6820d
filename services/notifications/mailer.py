"""E-mail for urgent escalations, sent from the outbox table by SMTP.

Subject and body carry codes and a link to the inbox item, never the child's details
(domain.compose_email). Recipients are role mailboxes from settings (``email_recipients``,
e.g. ``{"manager": "mset-managers@northshire.example"}``): identity holds no e-mail addresses.
A message that cannot be sent is retried with backoff, then marked failed.
"""

from __future__ import annotations

import logging
import smtplib
import threading
import uuid
from datetime import timedelta
from email.message import EmailMessage as MimeMessage
from email.utils import make_msgid

from services.notifications.domain import backoff_seconds
from services.notifications.settings import NotificationsSettings
from services.notifications.store import EmailMessage, Store, now_utc

log = logging.getLogger("mset.notifications.mailer")


def mime(msg: EmailMessage, sender: str) -> MimeMessage:
    m = MimeMessage()
    m["From"] = sender
    m["To"] = msg.recipient
    m["Subject"] = msg.subject
    # Stable across retries, so a receiving system can drop a duplicate.
    m["Message-ID"] = make_msgid(idstring=msg.id.hex, domain="mset-flow")
    m["X-MSET-Inbox-Item"] = str(msg.inbox_item_id)
    m.set_content(msg.body)
    return m


class Mailer:
    """Sends due e-mails from the outbox on its own thread."""

    def __init__(self, store: Store, settings: NotificationsSettings, stop: threading.Event):
        self.store = store
        self.s = settings
        self.stop = stop
        self.thread = threading.Thread(target=self.run, name="mailer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                done = self.tick()
            except Exception:
                log.exception("mailer tick failed; retrying")
                done = 0
            if not done:
                self.stop.wait(self.s.dispatch_poll_seconds)

    def tick(self) -> int:
        lease = timedelta(seconds=self.s.smtp_timeout_seconds * 3 + 30)
        claimed = self.store.claim_due_emails(limit=20, lease=lease)
        for msg in claimed:
            if self.stop.is_set():
                break
            try:
                self._send(msg)
                error = None
            except (smtplib.SMTPException, OSError) as exc:
                error = type(exc).__name__
                log.warning("e-mail %s not sent (%s); will retry", msg.id, error)
            self._record(msg.id, error)
        return len(claimed)

    def _send(self, msg: EmailMessage) -> None:
        with smtplib.SMTP(
            self.s.smtp_host, self.s.smtp_port, timeout=self.s.smtp_timeout_seconds
        ) as smtp:
            if self.s.smtp_starttls:
                smtp.starttls()
            if self.s.smtp_username and self.s.smtp_password:
                smtp.login(self.s.smtp_username, self.s.smtp_password)
            smtp.send_message(mime(msg, self.s.smtp_from))

    def _record(self, msg_id: uuid.UUID, error: str | None) -> None:
        now = now_utc()
        with self.store.session() as s:
            m = s.get(EmailMessage, msg_id, with_for_update=True)
            if m is None:
                return
            m.attempts += 1
            m.lease_until = None
            m.last_error = error
            if error is None:
                m.status = "sent"
                m.sent_at = now
                m.next_attempt_at = None
            elif m.attempts >= self.s.email_max_attempts:
                m.status = "failed"
                m.next_attempt_at = None
            else:
                delay = backoff_seconds(m.attempts, self.s.email_backoff_seconds, 3600.0)
                m.next_attempt_at = now + timedelta(seconds=delay)
