"""The environment every test process (and every process a test starts) runs in.

Settings default to production, which refuses development secrets; the tests say
``MSET_ENVIRONMENT=test`` and carry a service token of their own, as a deployment would. A
test that needs the production default (or another token) overrides these itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

# Not the development token (refused outside development), and not a secret: tests only.
TEST_SERVICE_TOKEN = "test-service-token-" + "0" * 24

TEST_ENVIRONMENT = {"MSET_ENVIRONMENT": "test", "MSET_SERVICE_TOKEN": TEST_SERVICE_TOKEN}


@contextmanager
def running_as_tests() -> Iterator[None]:
    """``TEST_ENVIRONMENT`` in ``os.environ`` while the block runs."""
    before = {name: os.environ.get(name) for name in TEST_ENVIRONMENT}
    os.environ.update(TEST_ENVIRONMENT)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
