"""Triage benchmark: evaluations per second in process (durable-rules), for a plain-Python
baseline computing the same score, band and suggested level in the same run, and over HTTP.

    python -m bench.triage.run          # in process, then over HTTP to a server it starts
    python -m bench.triage.run --count 5000 --url http://127.0.0.1:8001 --token "$TOKEN"

Every input is different (indicators, recency, age, episodes, actions, as_of), generated
from a seed, so the engine cannot answer from anything it kept: it keeps nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import uvicorn

from mset_contract.triage import TriageInput
from mset_contract.vocab import IndicatorKind, Recency, RiskLevel
from services.triage.api import create_app
from services.triage.domain import Triage
from services.triage.examples import distinct_inputs
from services.triage.ruleset_config import RulesetConfig, packaged_rulesets_dir
from services.triage.settings import TriageSettings

Outcome = tuple[int, RiskLevel, RiskLevel]  # score, band level, suggested level


def plain_python(config: RulesetConfig) -> Callable[[TriageInput], Outcome]:
    """The same score, band, floors and overrides as the ruleset, in plain Python: what the
    rules engine costs, measured against doing without it."""
    weights = {
        (k.value, r.value): config.weights.for_kind(k).for_recency(r)
        for k in IndicatorKind
        for r in Recency
    }
    bands = [(b.min_score, b.level) for b in reversed(config.bands)]
    young, area_max = config.floors.young_child, config.floors.area_maximum
    overrides = [
        (
            {a.value for a in o.areas},
            set(o.codes),
            {k.value for k in o.kinds},
            {r.value for r in o.recencies},
            o.level,
        )
        for o in config.overrides
    ]

    def evaluate(inp: TriageInput) -> Outcome:
        score = 0
        areas: dict[str, int] = defaultdict(int)
        floor = 0
        for ind in inp.indicators:
            points = weights[(ind.kind.value, ind.recency.value)]
            score += points
            areas[ind.area.value] += points
            for o_areas, o_codes, o_kinds, o_recencies, o_level in overrides:
                if (
                    (ind.area.value in o_areas or ind.code in o_codes)
                    and (not o_kinds or ind.kind.value in o_kinds)
                    and (not o_recencies or ind.recency.value in o_recencies)
                ):
                    floor = max(floor, o_level.rank)
        band = next(level for low, level in bands if score >= low)
        if young is not None and inp.age_years < young.under_age:
            floor = max(floor, young.level.rank)
        if area_max is not None and any(v >= area_max.min_area_score for v in areas.values()):
            floor = max(floor, area_max.level.rank)
        suggested = band if band.rank >= floor else _BY_RANK[floor]
        return score, band, suggested

    return evaluate


_BY_RANK = {lv.rank: lv for lv in RiskLevel}


def _rate(func: Callable[[TriageInput], object], inputs: list[TriageInput], rounds: int) -> float:
    """Median evaluations per second over ``rounds`` passes of every input."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for inp in inputs:
            func(inp)
        rates.append(len(inputs) / (time.perf_counter() - start))
    return statistics.median(rates)


async def _post_httpx(
    url: str, token: str, bodies: list[bytes], concurrency: int
) -> tuple[float, Counter[int]]:
    statuses: Counter[int] = Counter()
    queue = iter(bodies)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            for body in queue:  # shared iterator: each body is sent once
                try:
                    resp = await client.post("/v1/evaluate", content=body, headers=headers)
                    statuses[resp.status_code] += 1
                except httpx.HTTPError:
                    statuses[0] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return len(bodies) / elapsed, statuses


async def _post_lean(
    url: str, token: str, bodies: list[bytes], concurrency: int
) -> tuple[float, Counter[int]]:
    """The same requests over plain HTTP/1.1 keep-alive connections. A load generator should
    cost little beside the server it measures; httpx costs about as much per request as the
    triage API itself, and in one process they share one GIL."""
    target = httpx.URL(url)
    host, port = target.host, target.port or 80
    head = (
        f"POST /v1/evaluate HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    ).encode()
    statuses: Counter[int] = Counter()
    queue = iter(bodies)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for body in queue:
                writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
                status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
                fields = dict(line.split(b":", 1) for line in header_lines if b":" in line)
                length = {k.strip().lower(): v for k, v in fields.items()}[b"content-length"]
                await reader.readexactly(int(length))
                statuses[int(status_line.split(b" ", 2)[1])] += 1
        finally:
            writer.close()
            await writer.wait_closed()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(bodies) / (time.perf_counter() - start), statuses


class _LocalServer:
    """The triage API under uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, triage: Triage, token: str) -> None:
        settings = TriageSettings(environment="development", service_token=token)
        app = create_app(settings, triage=triage)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="triage-bench-api")

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the local triage API did not start")
            time.sleep(0.05)
        (sock,) = self.server.servers[0].sockets
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="distinct inputs (default 5000)")
    parser.add_argument("--rounds", type=int, default=3, help="in-process passes (median)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--url", help="a running triage API; default: start one here")
    parser.add_argument("--token", default=os.environ.get("MSET_SERVICE_TOKEN"))
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP requests in flight")
    parser.add_argument(
        "--client", choices=["lean", "httpx"], default="lean", help="HTTP load generator"
    )
    parser.add_argument("--rulesets-dir", type=Path, default=packaged_rulesets_dir())
    parser.add_argument("--version", default="1", help="rules version to evaluate with")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP run")
    args = parser.parse_args(argv)
    if args.url and not args.token:
        parser.error("--url needs --token (or MSET_SERVICE_TOKEN)")

    triage = Triage.from_directory(args.rulesets_dir, args.version)
    ruleset = triage.ruleset()
    inputs = list(distinct_inputs(args.count, seed=args.seed))
    assert len({i.model_dump_json() for i in inputs}) == len(inputs), "inputs not distinct"
    print(
        f"triage benchmark: {len(inputs)} distinct inputs, rules v{ruleset.version} "
        f"({ruleset.name}, {len(ruleset.rules)} rules); Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs"
    )

    # Warm up both paths (imports, caches, the engine's first session), then measure.
    baseline = plain_python(ruleset.config)
    for inp in inputs[:200]:
        triage.evaluate(inp)
        baseline(inp)
    engine_rate = _rate(triage.evaluate, inputs, args.rounds)
    base_rate = _rate(baseline, inputs, args.rounds)

    # The baseline must compute what the rules compute, or the comparison means nothing.
    agree = sum(
        (r.score, r.band_level, r.suggested_level) == baseline(inp)
        for inp, r in ((inp, triage.evaluate(inp)) for inp in inputs)
    )
    levels = Counter(triage.evaluate(inp).level.value for inp in inputs)
    print(
        f"  in process, durable-rules : {engine_rate:9,.0f} evaluations/s "
        f"({1e6 / engine_rate:,.0f} us each; full result: level, judgement, "
        "recommendation, escalations, every rule's reason)"
    )
    print(
        f"  in process, plain Python  : {base_rate:9,.0f} evaluations/s "
        f"(score, band and suggested level only; agrees on {agree}/{len(inputs)})"
    )
    print(f"  ratio plain / durable-rules: {base_rate / engine_rate:,.1f}x")
    print(f"  levels: {dict(sorted(levels.items()))}")
    if agree != len(inputs):
        print("baseline and rules disagree", file=sys.stderr)
        return 1
    if args.no_http:
        return 0

    bodies = [i.model_dump_json().encode() for i in inputs]
    post = _post_lean if args.client == "lean" else _post_httpx
    if args.url:
        rate, statuses = asyncio.run(post(args.url, args.token, bodies, args.concurrency))
        where = args.url
    else:
        token = secrets.token_urlsafe(32)
        with _LocalServer(triage, token) as url:
            rate, statuses = asyncio.run(post(url, token, bodies, args.concurrency))
        where = f"{url} (uvicorn in this process)"
    ok = statuses.get(200, 0)
    print(
        f"  over HTTP {where}, {args.concurrency} in flight, {args.client} client: "
        f"{rate:,.0f} evaluations/s; "
        f"{ok}/{len(bodies)} answered 200"
        + ("" if ok == len(bodies) else f"; others: {dict(statuses)}")
    )
    return 0 if ok == len(bodies) else 1


if __name__ == "__main__":
    sys.exit(main())
