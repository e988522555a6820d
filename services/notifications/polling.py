"""The notifications worker's polling loops (the outbox relay, the webhook dispatcher, the
mailer, the disclosure relay): each runs ``tick`` on its own thread until the worker stops.

The work is in the store, never in the loop: a tick that fails is logged and tried again
after the pause, and nothing is lost by it (each tick claims its rows, and a claim not
settled is taken up again when its lease runs out)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("mset.notifications")


class PollingLoop:
    """``tick`` until ``stop`` is set, pausing ``pause_seconds`` when a tick found nothing to
    do (or failed); ``close`` once, when the loop ends."""

    name = "polling-loop"

    def __init__(self, stop: threading.Event, pause_seconds: float) -> None:
        self.stop = stop
        self.pause_seconds = pause_seconds
        self.thread = threading.Thread(target=self.run, name=self.name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    done = self.tick()
                except Exception as exc:
                    self.failed(exc)
                    done = 0
                if not done:
                    self.stop.wait(self.pause_seconds)
        finally:
            self.close()

    def tick(self) -> int:
        """Do one batch of the work; how much was done (0: pause before the next)."""
        raise NotImplementedError

    def failed(self, exc: Exception) -> None:
        log.error("%s: tick failed; retrying", self.name, exc_info=exc)

    def close(self) -> None:
        """Release what the loop holds (a client's connections)."""
