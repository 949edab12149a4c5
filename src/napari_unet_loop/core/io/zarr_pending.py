"""Wait for zarr's own writes to finish before a half-written store is removed.

zarr (v3) writes chunks in coroutines on its event-loop thread. When a signal interrupts the
caller mid-write, those coroutines run on, and one finishing after the folder is removed
would recreate part of it; removing a temporary store therefore waits for them first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures


async def _others() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    await asyncio.gather(*tasks, return_exceptions=True)


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
