"""`make dev` gives every worker its two metrics ports and the banner says where every
process's metrics are."""

from __future__ import annotations

from deploy.stack import StackSettings, banner, plan


def test_every_worker_gets_its_own_metrics_ports_and_the_banner_lists_every_process() -> None:
    s = StackSettings(worker_metrics_base_port=9300)
    parts = plan(s)
    workers = [p for p in parts if p.name.endswith("-worker")]
    assert {p.name for p in workers} == {
        "referral-worker",
        "triage-worker",
        "meeting-worker",
        "notifications-worker",
        "workflows-worker",
    }
    ports = [port for p in workers for port in p.listens]
    assert sorted(ports) == list(range(9300, 9310))  # two each, none shared
    for p in workers:
        own, sdk = p.listens
        [prefix] = {
            k.removesuffix("WORKER_METRICS_PORT")
            for k in p.env
            if k.endswith("_WORKER_METRICS_PORT")
        }
        assert p.env[f"{prefix}WORKER_METRICS_PORT"] == str(own)
        assert p.env[f"{prefix}WORKER_SDK_METRICS_PORT"] == str(sdk)
    text = banner(s, parts, None)
    for p in parts:
        if p.name.endswith(("-api", "-worker")):
            assert p.metrics and all(url in text for url in p.metrics), p.name


def test_worker_metrics_can_be_turned_off() -> None:
    parts = plan(StackSettings(worker_metrics_base_port=0))
    assert all(not p.listens for p in parts if p.name.endswith("-worker"))
