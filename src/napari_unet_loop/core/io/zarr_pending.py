"""zarr's event loop, made whole before a write and drained before a half-written store is
removed.

zarr (v3) writes chunks in coroutines on an event-loop thread it starts on first use. A signal
(the CLI turns SIGINT and SIGTERM into exceptions) arriving while asyncio builds that loop
leaves a half-made loop, whose finaliser prints an error at exit, or a loop with no thread to
run it: so the writers start it inside ``core.signals.critical``. And when a signal interrupts
the caller mid-write, the coroutines run on; one finishing after the folder is removed would
recreate part of it, so removing a temporary store waits for them first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from ..signals import critical


async def _others() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.gather(*tasks, return_exceptions=True)


def start_zarr_loop() -> None:
    """Start zarr's event-loop thread now, where no signal can cut it in half."""
    try:
        from zarr.core.sync import _get_loop
    except ImportError:  # another zarr: nothing known to start
        return
    with critical():
        _get_loop()


def wait_for_zarr_writes(timeout: float = 10.0) -> None:
    """Block until every coroutine on zarr's event loop has ended, or ``timeout`` passes."""
    try:
        from zarr.core.sync import loop
    except ImportError:  # another zarr: nothing known to wait for
        return
    running = loop[0]
    if running is None or running.is_closed():
        return
    future = asyncio.run_coroutine_threadsafe(_others(), running)
    try:
        future.result(timeout)
    except (concurrent.futures.TimeoutError, RuntimeError):
        future.cancel()
