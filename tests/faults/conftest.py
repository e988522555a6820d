"""The fault tier: the stack's parts as separate processes (``deploy.supervise``), one stack
per module, each test killing parts of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.faults import FaultStack, fault_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    root = tmp_path_factory.mktemp("faults")
    with fault_stack(root / "data", root / "logs") as running:
        yield running
