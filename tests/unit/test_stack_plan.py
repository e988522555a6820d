"""The stack's plan with replicas (``deploy.stack.plan``): what ``make dev`` and the fault
tier start, without starting it."""

from __future__ import annotations

from collections import Counter

from deploy.stack import StackSettings, plan, stop_stages

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/mset"


def test_one_replica_keeps_the_parts_names_and_ports() -> None:
    parts = plan(StackSettings())
    names = [p.name for p in parts]
    assert "referral-api" in names and "workflows-worker" in names
    assert all(p.group == p.name for p in parts)
    assert {p.url for p in parts if p.url} == {
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
        "http://127.0.0.1:8003",
    }


def test_every_api_and_worker_runs_n_times_on_its_own_port_against_one_database() -> None:
    parts = plan(StackSettings(replicas=2, database_url=PG))
    groups = Counter(p.group for p in parts)
    assert groups["temporal"] == groups["broker"] == 1
    assert all(n == 2 for g, n in groups.items() if g.endswith(("-api", "-worker")))
    assert {p.name for p in parts if p.group == "referral-api"} == {
        "referral-api.1",
        "referral-api.2",
    }
    ports = [port for p in parts for port in p.listens]
    assert len(ports) == len(set(ports)), "two parts on one port"
    assert [p.url for p in parts if p.group == "referral-api"] == [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8100",
    ]
    databases = {v for p in parts for k, v in p.env.items() if k.endswith("_DATABASE_URL")}
    assert databases == {PG}
    # The services call each other at replica 1 (a load balancer's address in production).
    assert {p.env["MSET_REFERRAL_URL"] for p in parts if p.env} == {"http://127.0.0.1:8000"}


def test_replicas_stop_together_in_their_part_s_stage() -> None:
    stages = [[p.name for p in stage] for stage in stop_stages(plan(StackSettings(replicas=2)))]
    # The APIs' copies, and the portal (one copy: its sessions live in its process).
    assert all(name.split(".")[0].endswith("-api") for name in stages[0] if name != "portal")
    assert "portal" in stages[0]
    assert len(stages[0]) == 9
    assert stages[-3:] == [
        ["notifications-worker.1", "notifications-worker.2"],
        ["broker"],
        ["temporal"],
    ]
