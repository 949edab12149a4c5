import asyncio
import threading
import time

import zarr
from zarr.core.sync import _get_loop, iothread, loop

from napari_unet_loop.core.io.zarr_pending import start_zarr_loop, wait_for_zarr_writes


def test_waits_for_a_write_still_running_on_zarrs_loop(tmp_path):
    zarr.create_array(store=str(tmp_path / "a.zarr"), shape=(4, 4), dtype="u1")  # starts the loop
    done = threading.Event()

    async def slow_write():
        await asyncio.sleep(0.3)
        done.set()

    asyncio.run_coroutine_threadsafe(slow_write(), _get_loop())
    wait_for_zarr_writes()
    assert done.is_set()


def test_gives_up_after_its_timeout():
    release = threading.Event()

    async def stuck():
        while not release.is_set():
            await asyncio.sleep(0.01)

    asyncio.run_coroutine_threadsafe(stuck(), _get_loop())
    start = time.monotonic()
    wait_for_zarr_writes(timeout=0.1)
    release.set()
    assert time.monotonic() - start < 2.0


def test_zarrs_loop_is_started_whole_before_a_write():
    start_zarr_loop()
    assert loop[0] is not None and iothread[0].is_alive()
    start_zarr_loop()  # a second call keeps the same loop
    assert _get_loop() is loop[0]
