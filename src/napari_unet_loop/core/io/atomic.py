"""Write files atomically: into a hidden temporary file beside the target, then rename.

An interrupted or failed write never leaves a half file under the final name, and an existing
file there stays untouched until the new one is complete. Folders (zarr arrays) are built the
same way; replacing an existing one takes two renames, so only the moment between them has
neither.

Every temporary file or folder is recorded until it is committed or discarded, so an
interrupted command can remove what is left (``discard_leftovers``), and holds a lock
(``flock``, where the system has it) while its process lives. A process killed outright
(SIGKILL, power loss) leaves its temporaries behind; the next write into the same folder
removes those whose lock is free and that are older than the current process. Only names of
exactly this module's form are touched: ``.<name>.<8 characters>.tmp`` with a ``.tif``,
``.tiff``, ``.zarr`` or ``.safetensors`` name.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..signals import critical

try:
    import fcntl
except ImportError:  # Windows: no locks, so no sweeping either
    fcntl = None

log = logging.getLogger(__name__)

# tempfile's names: prefix, 8 characters from its alphabet, suffix
_TEMPORARY = re.compile(r"^\..+\.(tiff?|zarr|safetensors)\.[a-z0-9_]{8}\.tmp$", re.IGNORECASE)
_STARTED = time.time()
_live: dict[Path, int | None] = {}  # temporary path -> the descriptor holding its lock
_swept: set[Path] = set()
_lock = threading.Lock()


def _hold(tmp: Path, fd: int | None) -> None:
    """Lock ``tmp`` through ``fd`` (kept open) and record it; without locks just record it."""
    if fd is not None and fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a file system without locks: the age test alone protects it
            pass
    elif fd is not None:
        os.close(fd)
        fd = None
    with _lock:
        _live[tmp] = fd


def _forget(tmp: Path) -> None:
    with _lock:
        fd = _live.pop(tmp, None)
    if fd is not None:
        os.close(fd)


def _sweep(folder: Path) -> None:
    """Remove this module's temporaries in ``folder`` that a killed process left behind."""
    folder = folder.absolute()
    with _lock:
        if folder in _swept or fcntl is None:
            return
        _swept.add(folder)
    try:
        entries = [e for e in os.scandir(folder) if _TEMPORARY.match(e.name)]
    except OSError:
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_symlink() or entry.stat().st_mtime >= _STARTED or path in _live:
                continue
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: its process still runs
        except OSError:
            continue
        else:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            log.info("removed %s, left by an interrupted run", path)
        finally:
            os.close(fd)


def _default_mode(folder: bool = False) -> int:
    # mkstemp and mkdtemp give the owner alone access; give the result the usual permissions
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def temporary_beside(path: Path) -> Path:
    """A new empty hidden ``.<name>.*.tmp`` file in ``path``'s folder."""
    _sweep(path.parent)
    with critical():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        _hold(Path(tmp), fd)
    return Path(tmp)


def temporary_folder_beside(path: Path) -> Path:
    """A new empty hidden ``.<name>.*.tmp`` folder in ``path``'s folder."""
    _sweep(path.parent)
    with critical():
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            fd = os.open(tmp, os.O_RDONLY)
        except OSError:
            fd = None
        _hold(tmp, fd)
    return tmp


def discard(tmp: Path) -> None:
    """Remove a temporary file or folder (safe to call twice)."""
    _forget(tmp)
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.unlink(missing_ok=True)


def discard_leftovers() -> None:
    """Remove every temporary this process made and did not commit (after an interrupt)."""
    with _lock:
        leftovers = list(_live)
    for tmp in leftovers:
        discard(tmp)


def commit(tmp: Path, path: Path) -> None:
    """Move a finished temporary file into place."""
    with critical():
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
        _forget(tmp)


def commit_folder(tmp: Path, path: Path) -> None:
    """Move a finished temporary folder into place, replacing any folder already there."""
    with critical():
        os.chmod(tmp, _default_mode(folder=True))
        if not path.exists():
            os.replace(tmp, path)
            _forget(tmp)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, old / path.name)
        os.replace(tmp, path)
        _forget(tmp)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = temporary_beside(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise
