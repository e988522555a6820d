"""The stack's parts as separate processes that can be killed and restarted one at a time.

``deploy.stack`` runs the whole stack as one command; the fault tests (``tests/faults``) and
the fault bench (``bench/faults``) need each part on its own: SIGKILL it mid-flow, start it
again, and see the rest carry on. The parts are exactly ``deploy.stack.plan()``'s (same
argv, same environment, same health checks), so what is tested is what ``make dev`` runs.

Every part gets its own process group (as in ``deploy.stack``) and its own log file in
``log_dir`` (appended across restarts). Everything is stopped by pid, never by name.

With ``StackSettings.replicas`` above 1 every API and worker runs that many times (parts
``referral-api.1``, ``referral-api.2``, ...; ``replicas_of("referral-api")`` names them,
``urls("referral-api")`` gives the APIs' addresses for a client to spread its requests over),
and ``StackSettings.database_url`` puts every service in one database, as replicas need.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

from deploy.stack import (
    STOP_TIMEOUT,
    Part,
    StackSettings,
    dev_codec_secrets,
    dev_service_token,
    http_ok,
    plan,
    port_open,
    stop_stages,
)

# The order parts are started in; the first two are waited for before the rest start
# (the services connect to them at start-up).
INFRASTRUCTURE = ("temporal", "broker")


class PartFailed(RuntimeError):
    pass


class Supervisor:
    def __init__(
        self,
        settings: StackSettings,
        log_dir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        """``env``: extra environment for every part (e.g. the notifications service's SMTP
        settings), on top of the plan's own."""
        self.s = settings
        self.log_dir = log_dir
        token = dev_service_token(settings.data_dir)
        self.parts: dict[str, Part] = {p.name: p for p in plan(settings, token)}
        self.extra_env = dict(env or {})
        self._logs: dict[str, IO[str]] = {}

    # --- one part ------------------------------------------------------------------------

    def start(self, name: str) -> None:
        part = self.parts[name]
        if part.proc is not None and part.proc.poll() is None:
            raise PartFailed(f"{name} is already running (pid {part.proc.pid})")
        dev_codec_secrets(self.s.data_dir)  # the payload key and ops token every part reads
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._close_log(name)
        log = (self.log_dir / f"{name}.log").open("a")
        self._logs[name] = log
        part.proc = subprocess.Popen(
            part.argv,
            env={**os.environ, **part.env, **self.extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group, as deploy.stack starts it
        )

    def healthy(self, name: str) -> bool:
        """The part's own readiness check from the plan: its port accepts, its health URL
        answers 200. A part with neither (a worker) is ready when its process is alive."""
        part = self.parts[name]
        if part.proc is None or part.proc.poll() is not None:
            return False
        if part.port is not None and not port_open(self.s.host, part.port):
            return False
        return part.health is None or http_ok(part.health)

    def wait_healthy(self, name: str, timeout: float | None = None) -> float:
        """Block until ``name`` is healthy; the seconds it took."""
        started = time.monotonic()
        deadline = started + (self.s.start_timeout if timeout is None else timeout)
        part = self.parts[name]
        while time.monotonic() < deadline:
            if part.proc is not None and part.proc.poll() is not None:
                raise PartFailed(
                    f"{name} exited with code {part.proc.returncode}:\n{self.tail(name)}"
                )
            if self.healthy(name):
                return time.monotonic() - started
            time.sleep(0.1)
        raise PartFailed(f"{name} was not healthy after {deadline - started:.0f} s")

    def kill(self, name: str) -> None:
        """SIGKILL the part's process group: no handler runs, nothing is flushed."""
        self._signal(name, signal.SIGKILL)
        self._reap(name, timeout=30)

    def terminate(self, name: str, timeout: float = 30) -> int | None:
        """SIGTERM, then wait; SIGKILL if it has not gone in ``timeout`` s. Its exit code."""
        self._signal(name, signal.SIGTERM)
        return self._reap(name, timeout)

    def restart(self, name: str, timeout: float | None = None) -> float:
        """Start a stopped part again; seconds until it is healthy."""
        self.start(name)
        return self.wait_healthy(name, timeout)

    def replicas_of(self, group: str) -> list[str]:
        """The names of the parts that are copies of ``group`` ("referral-api")."""
        return [n for n, p in self.parts.items() if p.group == group]

    def groups(self) -> list[str]:
        """Every part's group, once each, in the plan's order."""
        return list(dict.fromkeys(p.group for p in self.parts.values()))

    def urls(self, group: str) -> list[str]:
        """The base URL of every copy of an API."""
        return [u for n in self.replicas_of(group) if (u := self.parts[n].url)]

    def pid(self, name: str) -> int | None:
        proc = self.parts[name].proc
        return proc.pid if proc is not None else None

    def exited(self) -> dict[str, int]:
        """Parts whose process has ended (that were started), with their exit codes."""
        return {
            n: p.proc.returncode
            for n, p in self.parts.items()
            if p.proc is not None and p.proc.poll() is not None
        }

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # --- the whole stack -----------------------------------------------------------------

    def start_all(self) -> None:
        """Start every part in the plan's order (infrastructure first, waited for), then wait
        for all of them, as ``deploy.stack`` does."""
        busy = [
            (p.name, n) for p in self.parts.values() for n in p.listens if port_open(self.s.host, n)
        ]
        if busy:
            raise PartFailed(f"ports already in use: {busy}")
        self.s.data_dir.mkdir(parents=True, exist_ok=True)
        for name in self.parts:
            self.start(name)
            if name in INFRASTRUCTURE:
                self.wait_healthy(name)
        for name in self.parts:
            self.wait_healthy(name)

    def stop_all(self) -> None:
        """SIGTERM every running part in ``deploy.stack``'s stop order (SIGKILL what does not
        stop in time), then close the logs. Safe to call twice, and after a failure."""
        try:
            for stage in stop_stages(list(self.parts.values())):
                for part in stage:
                    self._signal(part.name, signal.SIGTERM)
                for part in stage:
                    self._reap(part.name, STOP_TIMEOUT)
        finally:
            for name in list(self._logs):
                self._close_log(name)

    # --- internals -----------------------------------------------------------------------

    def _signal(self, name: str, sig: int) -> None:
        proc = self.parts[name].proc
        if proc is None or proc.poll() is not None:
            return
        try:
            # The group: the pid is also its process group id (start_new_session).
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def _reap(self, name: str, timeout: float) -> int | None:
        proc = self.parts[name].proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(name, signal.SIGKILL)
            return proc.wait(timeout=30)

    def _close_log(self, name: str) -> None:
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()
