import os
import sys

import pytest

from napari_unet_loop.core.io import atomic

pytestmark = pytest.mark.skipif(atomic.fcntl is None, reason="no file locks on this system")


def _old(path, data=b"x"):
    """A file (or, with data None, a folder) last changed before this process started."""
    if data is None:
        (path / "0").mkdir(parents=True)
    else:
        path.write_bytes(data)
    os.utime(path, (atomic._STARTED - 60, atomic._STARTED - 60))
    return path


def test_leftovers_of_killed_runs_are_swept_and_nothing_else(tmp_path):
    stale = [
        _old(tmp_path / ".labels.tif.abcd1234.tmp"),
        _old(tmp_path / ".labels.zarr.k2j3h4g5.tmp", None),
        _old(tmp_path / ".m.safetensors.x_y_z_12.tmp"),
    ]
    # names that only look alike, a newer file, and one a running process holds
    kept = [
        _old(tmp_path / n)
        for n in (
            ".notes.txt.abcd1234.tmp",
            ".labels.tif.tmp",
            "a.tif",
            ".labels.tif.abcd12345.tmp",
            ".held.tif.abcd1234.tmp",
        )
    ]
    newer = tmp_path / ".new.tif.abcd1234.tmp"
    newer.write_bytes(b"x")
    with open(kept[-1]) as f:
        atomic.fcntl.flock(f.fileno(), atomic.fcntl.LOCK_EX)
        with atomic.atomic_output(tmp_path / "out.tif") as tmp:
            tmp.write_bytes(b"done")
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in [*kept, newer])
    assert (tmp_path / "out.tif").read_bytes() == b"done"


def test_an_interrupted_process_removes_what_it_had_not_committed(tmp_path):
    tmp = atomic.temporary_beside(tmp_path / "a.tif")
    folder = atomic.temporary_folder_beside(tmp_path / "b.zarr")
    assert tmp.exists() and folder.is_dir()
    atomic.discard_leftovers()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_signal_waits_for_a_commit(tmp_path):
    import signal

    from napari_unet_loop.core import signals

    previous = signals.install()
    try:
        tmp = atomic.temporary_beside(tmp_path / "a.tif")
        with pytest.raises(signals.Terminated):
            with signals.critical():
                os.kill(os.getpid(), signal.SIGTERM)
                atomic.commit(tmp, tmp_path / "a.tif")  # runs to the end first
        assert (tmp_path / "a.tif").exists() and not tmp.exists()
    finally:
        signals.restore(previous)
