"""Writing files so that readers never see half of one: every output the workbench replaces (reports,
their caches, the index, status files) goes through these helpers.

Each writes beside its target under a hidden temporary name, then renames it into place; a failure (a
full disk, an interrupt) leaves the old target whole and no temporary file behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def default_file_mode() -> int:
    """0o666 less the process umask: what ``open()`` would have given a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temporary_file(directory: Path, prefix: str, suffix: str = "") -> Path:
    """A new empty hidden file in ``directory`` with the mode ``open()`` would give it (``mkstemp``'s
    is owner-only)."""
    fd, name = tempfile.mkstemp(prefix=f".{prefix}.", suffix=suffix, dir=directory)
    os.close(fd)
    os.chmod(name, default_file_mode())
    return Path(name)


def atomic_write(path: Path, data: str) -> None:
    """Write the text ``data`` to ``path`` (UTF-8): readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(path.parent, path.name)
    try:
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def replace_file(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` atomically (with ``source``'s file mode)."""
    tmp = temporary_file(Path(target).parent, Path(target).name)
    try:
        shutil.copy(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def swap_directory(staging: Path, directory: Path) -> None:
    """Put the folder ``staging`` in the place of ``directory`` by renames; the old folder is
    removed afterwards."""
    staging, directory = Path(staging), Path(directory)
    old = directory.with_name(f".{directory.name}.old-{staging.name.lstrip('.')}")
    if directory.exists():
        os.replace(directory, old)
    os.replace(staging, directory)
    shutil.rmtree(old, ignore_errors=True)


def replace_directory(directory: Path, fill: Callable[[Path], None]) -> Path:
    """Replace the folder ``directory`` with a new one that ``fill`` writes (it is given the empty
    staging folder, beside ``directory``); returns ``directory``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        fill(staging)
        swap_directory(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory
