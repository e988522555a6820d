"""Graceful shutdown for the worker processes.

SIGTERM (what ``deploy.stack`` and process managers send) and SIGINT stop a worker the same
way: it stops polling for new tasks, lets the activities it is running finish for up to
``WORKER_GRACEFUL_SHUTDOWN`` (then cancels them, so Temporal retries them elsewhere at once
instead of after their start-to-close timeout), and exits. Without a handler, SIGTERM ends
a Python process at once and every activity it held waits out its timeout.

The APIs need nothing here: ``uvicorn.run`` handles both signals itself, finishing the
requests in flight before it exits.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

from temporalio.worker import Worker

# Below deploy.stack's wait for a worker to exit, so the stack never has to SIGKILL one.
WORKER_GRACEFUL_SHUTDOWN = timedelta(seconds=10)


async def until_signalled() -> None:
    """Return on the first SIGINT or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def run_until_signalled(worker: Worker) -> None:
    """Run ``worker`` until SIGINT or SIGTERM, then shut it down gracefully (its
    ``graceful_shutdown_timeout``)."""
    async with worker:
        await until_signalled()
