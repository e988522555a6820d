"""The durable-rules host: its quirks, measured, and how the host keeps clear of them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import durable_rules_engine as dre
import pytest

from mset_contract.triage import TriageResult
from services.triage import engine as engine_module
from services.triage.domain import Triage
from services.triage.engine import RulesEngineError, RulesHost
from services.triage.examples import case, distinct_inputs
from services.triage.ruleset_config import packaged_rulesets_dir

pytestmark = pytest.mark.unit

YOUNG = {"young": {"all": [{"m": {"$and": [{"t": "case"}, {"$lt": {"age": 13}}]}}]}}


@pytest.fixture(scope="module")
def triage() -> Iterator[Triage]:
    t = Triage.from_directory(packaged_rulesets_dir(), "1")
    yield t
    t.close()


def test_the_engine_runs_out_of_sessions_when_they_are_not_deleted() -> None:
    """The quirk the host exists for: 1024 live sessions per ruleset, then MemoryError."""
    handle = dre.create_ruleset("quirk_session_limit", json.dumps(YOUNG))
    try:
        for n in range(1024):
            dre.assert_facts(handle, json.dumps([{"sid": str(n), "id": 1, "t": "other"}]))
        with pytest.raises(MemoryError):
            dre.assert_facts(handle, json.dumps([{"sid": "1024", "id": 1, "t": "other"}]))
    finally:
        # Deleting the ruleset frees its table without visiting the sessions (see below).
        dre.delete_ruleset(handle)


def test_sessions_that_fire_nothing_are_deleted_without_crashing() -> None:
    """The engine frees a session's uninitialised action buffers on delete unless an action
    ran in it; the host's sentinel rule makes that safe. A regression would crash the
    interpreter, so the check runs in a child process."""
    code = textwrap.dedent(
        f"""
        from services.triage.engine import RulesHost
        host = RulesHost()
        host.register("t", {YOUNG!r})
        for n in range(3000):
            with host.session("t") as s:
                s.assert_facts([{{"t": "case", "age": 15, "n": n}}])
                s.run(lambda rule, facts: None)
        assert host.sessions_deleted == 3000
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("value", [1e-05, 2e-07, 1e20, -3e16, 3.4e-05])
def test_facts_with_exponent_numbers_are_asserted_and_fire(value: float) -> None:
    """Python writes some floats as ``1e-05`` (no fraction), which the engine's parser cannot
    read: it dropped the whole batch and answered with an uninitialised state offset, and
    the next call crashed the interpreter or fired nothing (a triage taken 0.864 s after the
    last assessment is 1e-05 days). The check runs in a child process because the failure
    is a crash."""
    rules = {
        "small": {"all": [{"m": {"$and": [{"t": "case"}, {"$lt": {"x": value + abs(value)}}]}}]}
    }
    code = textwrap.dedent(
        """
        import json, sys
        from services.triage.engine import RulesHost
        rules, value = json.loads(sys.argv[1]), float(sys.argv[2])
        host = RulesHost()
        host.register("t", rules)
        fired = []
        for n in range(200):
            with host.session("t") as s:
                s.assert_facts([{"t": "case", "x": value, "n": n}])
                s.run(lambda rule, facts: fired.append((rule, facts[0]["x"])))
        assert fired == [("small", value)] * 200, fired[:3]
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(rules), repr(value)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


def test_a_failing_evaluation_still_deletes_its_session() -> None:
    host = RulesHost()
    host.register("t", YOUNG)

    def boom(rule: str, facts: list[dict[str, Any]]) -> None:
        raise ZeroDivisionError

    for _ in range(1500):  # more than the engine's table holds
        with pytest.raises(ZeroDivisionError), host.session("t") as s:
            s.assert_facts([{"t": "case", "age": 10}])
            s.run(boom)
        with pytest.raises(KeyError), host.session("t") as s:
            s.assert_facts([{"t": "case", "age": 10}])
            raise KeyError("before the rules ran")
    fired: list[str] = []
    with host.session("t") as s:
        s.assert_facts([{"t": "case", "age": 10}])
        s.run(lambda rule, facts: fired.append(rule))
    assert fired == ["young"]
    assert host.sessions_opened == host.sessions_deleted == 3001
    host.close()


def test_a_session_that_cannot_be_deleted_rebuilds_the_ruleset(
    triage: Triage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_delete = dre.delete_state
    calls = {"n": 0}

    def fail_once(handle: int, sid: str) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise dre.error("simulated failure")
        real_delete(handle, sid)

    host = RulesHost()
    host.register("t", YOUNG)
    before = host._handles["t"]
    monkeypatch.setattr(engine_module.dre, "delete_state", fail_once)
    with host.session("t") as s:
        s.assert_facts([{"t": "case", "age": 10}])
        s.run(lambda rule, facts: None)
    assert host._handles["t"] != before
    fired: list[str] = []
    with host.session("t") as s:
        s.assert_facts([{"t": "case", "age": 10}])
        s.run(lambda rule, facts: fired.append(rule))
    assert fired == ["young"]
    host.close()


def test_a_ruleset_cannot_change_once_loaded() -> None:
    host = RulesHost()
    host.register("t", YOUNG)
    with pytest.raises(RulesEngineError, match="already loaded"):
        host.register("t", YOUNG)
    with pytest.raises(RulesEngineError, match="reserved"):
        host.register("u", {engine_module.SENTINEL_RULE: YOUNG["young"]})
    host.close()


def test_rules_conclusions_are_chained_as_new_facts() -> None:
    host = RulesHost()
    host.register(
        "chain",
        {
            "first": {"all": [{"m": {"t": "a"}}]},
            "second": {"all": [{"m": {"t": "b"}}]},
            "join": {"all": [{"x": {"t": "a"}}, {"y": {"t": "b"}}]},
        },
    )
    seen: list[tuple[str, list[str]]] = []

    def on_fire(rule: str, facts: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        seen.append((rule, sorted(f["t"] for f in facts)))
        return [{"t": "b"}] if rule == "first" else None

    with host.session("chain") as s:
        s.assert_facts([{"t": "a"}])
        s.run(on_fire)
    assert sorted(seen) == [("first", ["a"]), ("join", ["a", "b"]), ("second", ["b"])]
    host.close()


def test_calls_from_many_threads_are_serialised(triage: Triage) -> None:
    inputs = list(distinct_inputs(400, seed=3))
    expected = [triage.evaluate(i) for i in inputs]
    results: dict[int, TriageResult] = {}
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(offset, len(inputs), 4):
                results[n] = triage.evaluate(inputs[n])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [results[n] for n in range(len(inputs))] == expected


def test_one_session_at_a_time(triage: Triage) -> None:
    opened = triage.host.sessions_opened
    triage.evaluate(case("MIS-01"))
    assert triage.host.sessions_opened == opened + 1
    assert triage.host.sessions_deleted == triage.host.sessions_opened
