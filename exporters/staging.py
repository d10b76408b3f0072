"""Outputs written atomically: staged beside the target, then renamed into place.

Every CLI that writes a folder or file (export-fpga's OUT/, fpga-hls's project,
fpga-compress's checkpoint, fpga-sim's outputs) writes it under a hidden staging name
beside the target and renames it over the target only when it is complete: a failed or
killed run never leaves a half-written target, and a replaced target is removed only
after its replacement is in place.

Staging names carry the id of the process that owns them,
``.<target name>.staging-<pid>-<random>`` (and ``.<target name>.old-<pid>-<random>`` for a
replaced folder on its way out). A run that is killed outright (SIGKILL, a power cut)
cannot clean up, so the next run for the same target does: :func:`remove_stale` deletes
the staging entries whose owning process has gone, and puts back an ``old`` folder whose
target is missing (the run died between its two renames; the user's previous output is
not lost). Entries of a process still running are left alone.

``tempfile.mkdtemp``/``mkstemp`` create 0700 folders and 0600 files; outputs are given
the permissions the user's umask gives any other tool's (``0o777 & ~umask`` for folders,
``0o666 & ~umask`` for files).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path


def umask() -> int:
    """The process's umask (read by setting it and putting it back; there is no getter before Python 3.13)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _stale_pattern(target: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(target.name)}\.(staging|old)-(\d+)-")


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale(target: Path) -> list[Path]:
    """Clean up after earlier runs for ``target`` that died; returns what it removed or restored."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern = _stale_pattern(target)
    found = []
    for entry in sorted(target.parent.iterdir()):
        match = pattern.match(entry.name)
        if match is None or _running(int(match.group(2))):
            continue
        if match.group(1) == "old" and not target.exists() and entry.is_dir():
            entry.rename(target)  # the previous output, between the two renames of a killed run
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        found.append(entry)
    return found


def _prefix(target: Path, kind: str) -> str:
    return f".{target.name}.{kind}-{os.getpid()}-"


def staging_dir(target: Path) -> Path:
    """A new, empty folder beside ``target`` (created with the umask's permissions) to build it in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    path = Path(tempfile.mkdtemp(prefix=_prefix(target, "staging"), dir=target.parent))
    os.chmod(path, 0o777 & ~umask())
    return path


def staging_file(target: Path, suffix: str = "") -> Path:
    """A new, empty file beside ``target`` (with the umask's permissions) to write it in."""
    target = Path(target)
    remove_stale(target)
    fd, name = tempfile.mkstemp(prefix=_prefix(target, "staging"), suffix=suffix, dir=target.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~umask())
    return Path(name)


def replace_dir(staging: Path, target: Path) -> None:
    """Move the finished ``staging`` folder to ``target``; an old ``target`` is removed only after."""
    staging, target = Path(staging), Path(target)
    old = None
    if target.exists():
        old = target.with_name(f"{_prefix(target, 'old')}{uuid.uuid4().hex[:8]}")
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
