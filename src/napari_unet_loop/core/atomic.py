"""Write files atomically: into a hidden temporary file beside the target, then rename.

An interrupted or failed write never leaves a half file under the final name, and an existing
file there stays untouched until the new one is complete. Folders (zarr arrays) are built the
same way; replacing an existing one takes two renames, so only the moment between them has
neither.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _default_mode(folder: bool = False) -> int:
    # mkstemp and mkdtemp give the owner alone access; give the result the usual permissions
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if folder else 0o666) & ~umask


def temporary_beside(path: Path) -> Path:
    """A new empty hidden ``.<name>.*.tmp`` file in ``path``'s folder."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def temporary_folder_beside(path: Path) -> Path:
    """A new empty hidden ``.<name>.*.tmp`` folder in ``path``'s folder."""
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))


def commit(tmp: Path, path: Path) -> None:
    """Move a finished temporary file into place."""
    os.chmod(tmp, _default_mode())
    os.replace(tmp, path)


def commit_folder(tmp: Path, path: Path) -> None:
    """Move a finished temporary folder into place, replacing any folder already there."""
    os.chmod(tmp, _default_mode(folder=True))
    if not path.exists():
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    os.replace(path, old / path.name)
    os.replace(tmp, path)
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
        tmp.unlink(missing_ok=True)
        raise
