"""The payload keys of the test tier.

Every test client and worker encrypts with ``TEST_KEYRING``; the tests' settings read the same
keys from ``MSET_CODEC_KEY_FILE``, which ``tests/conftest.py`` points at a file it writes when
the session starts (outside development a service refuses to start without keys). The key is
fixed, so a history recorded by ``tests.support.record_histories`` stays readable. Test data
only: production refuses any key it has not been given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

from temporalio.converter import DataConverter

from mset_platform.codec import Keyring
from mset_platform.temporal import data_converter

TEST_KEY_ID = "test-tier"
TEST_KEYRING = Keyring(current=TEST_KEY_ID, keys={TEST_KEY_ID: b"mset-test-tier-payload-key-32-b!"})
DATA_CONVERTER: DataConverter = data_converter(TEST_KEYRING)


@contextmanager
def key_file_for_tests() -> Iterator[Path]:
    """``TEST_KEYRING`` in a key file (owner-only), named by ``MSET_CODEC_KEY_FILE`` while
    the block runs."""
    with TemporaryDirectory(prefix="mset-test-keys-") as tmp:
        path = Path(tmp) / "codec-keys.json"
        path.write_text(TEST_KEYRING.to_json())
        path.chmod(0o600)
        before = os.environ.get("MSET_CODEC_KEY_FILE")
        os.environ["MSET_CODEC_KEY_FILE"] = str(path)
        try:
            yield path
        finally:
            if before is None:
                os.environ.pop("MSET_CODEC_KEY_FILE", None)
            else:
                os.environ["MSET_CODEC_KEY_FILE"] = before
