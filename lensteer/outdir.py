"""Output folders that belong to one run: checked up front, locked, staged, marked.

- :func:`check_out` runs before any work: ``--out`` must be a folder (or not exist yet) whose
  nearest existing parent is writable, and must be empty or hold this command's earlier run —
  never another command's run or files lensteer did not write.
- :func:`lock_out` holds an exclusive ``fcntl.flock`` on ``<parent>/.<name>.lock`` (holding the
  writer's pid) for the whole run, so a second writer stops at once with a clear message.
- :func:`staged_dir` is for all-or-nothing outputs (``locate``, ``export``): everything is
  written into a fresh hidden sibling that replaces the folder at the end, so the folder never
  mixes two runs and a killed run leaves the old one untouched.
- :func:`claim` marks a folder resumed in place (``evaluate``, ``demo``) with
  :data:`MARKER` and removes stale staging folders of killed runs.

>>> import tempfile
>>> out = Path(tempfile.mkdtemp()) / "run"
>>> with lock_out(check_out(out, "locate")), staged_dir(out) as tmp:
...     _ = (tmp / "sweep.json").write_text("{}")
>>> sorted(p.name for p in out.iterdir()), folder_kind(out)
(['sweep.json'], 'locate')
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputDirError

__all__ = ["MARKER", "check_out", "check_out_file", "claim", "folder_kind", "lock_out", "staged_dir", "write_marker"]

#: The file naming the command that owns a folder.
MARKER = ".lensteer-run.json"
# Files that identify folders written before the marker existed.
_LEGACY = (("sweep.json", "locate"), ("results.json", "evaluate"), ("sweep_cells.jsonl", "evaluate"),
           ("locate/sweep.json", "evaluate"), ("timings.json", "demo"), ("steering.json", "export"))


def folder_kind(out: str | os.PathLike) -> str | None:
    """The command whose run ``out`` holds; ``None`` if empty or missing; ``"unknown"`` if it
    holds files lensteer did not write."""
    out = Path(out)
    if not out.is_dir() or not any(out.iterdir()):
        return None
    try:
        command = json.loads((out / MARKER).read_text(encoding="utf-8")).get("command")
        if isinstance(command, str):
            return command
    except (OSError, ValueError, AttributeError):
        pass
    for name, kind in _LEGACY:
        if (out / name).exists():
            return kind
    if any((d / n).exists() for d in out.iterdir() if d.is_dir() for n in ("sweep_cells.jsonl", "locate")):
        return "demo"  # a demo folder: one evaluation folder per trait
    return "unknown"


def _writable(folder: Path) -> bool:
    try:
        fd, probe = tempfile.mkstemp(prefix=".lensteer-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(probe)
    return True


def check_out(path: str | os.PathLike, command: str, option: str = "--out") -> Path:
    """Cheap checks of an output folder, before any work; returns it as a Path."""
    out = Path(os.path.abspath(Path(path).expanduser()))
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{option} {out} is a file, not a folder: pass a folder path.")
    parent = out if out.exists() else out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputDirError(f"{option} {out}: {parent} is a file, so the folder cannot be created.")
    kind = folder_kind(out)
    if kind == "unknown":
        raise OutputDirError(
            f"{option} {out} already holds files that lensteer did not write: pass a new or "
            "empty folder."
        )
    if kind is not None and kind != command:
        hint = " (pass it as --locate)" if (command, kind) == ("evaluate", "locate") else ""
        raise OutputDirError(
            f"{option} {out} holds a `lensteer {kind}` run{hint}; `lensteer {command}` needs a "
            "folder of its own: pass a new one."
        )
    if not _writable(parent) or (out.exists() and not _writable(out.parent)):
        raise OutputDirError(f"{option} {out} is not writable here: pass a folder you can write to.")
    return out


def check_out_file(path: str | os.PathLike, option: str) -> Path:
    """Cheap checks of an output file, before any work: not a folder, its folder writable."""
    out = Path(os.path.abspath(Path(path).expanduser()))
    if out.is_dir():
        raise OutputDirError(f"{option} {out} is a folder: pass a file path.")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not _writable(parent):
        raise OutputDirError(f"{option} {out} cannot be written here: pass a path in a folder "
                             "you can write to.")
    return out


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def lock_out(out: str | os.PathLike) -> Iterator[Path]:
    """Hold the exclusive lock of ``out`` (one writer at a time) and clean up killed runs' stale
    staging folders; raises :class:`OutputDirError` naming the holder's pid if it is taken."""
    out = Path(out)
    created = out.parent
    while not created.parent.exists():
        created = created.parent
    made = not created.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    path = _lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputDirError(
                f"{out} is being written by another lensteer run (pid {pid}): wait for it to "
                "finish, or pass another --out."
            ) from None
        try:  # the holder before us may have removed the file: lock the one on disk
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _clean_stale(out)
        yield out
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still holding the lock
        os.close(fd)
        if made and not out.exists():  # a run that wrote nothing leaves no empty parents
            folder = out.parent
            with contextlib.suppress(OSError):
                while True:
                    folder.rmdir()
                    if folder == created:
                        break
                    folder = folder.parent


def _clean_stale(out: Path) -> None:
    """Remove staging folders of killed runs (call with the lock held)."""
    for old in out.parent.glob(f".{out.name}.old-*"):
        if not out.exists():
            os.rename(old, out)  # killed between the two renames of a swap: put it back
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    if not out.is_dir():
        return
    for folder, dirs, files in os.walk(out):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not (here / d / MARKER).exists()]  # another run's folder
        for name in [d for d in dirs if d.startswith(".") and ".tmp-" in d]:
            shutil.rmtree(here / name, ignore_errors=True)
            dirs.remove(name)
        for name in files:
            if name.startswith(".") and ".tmp-" in name:
                (here / name).unlink(missing_ok=True)


def _sibling(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}.{tag}-{os.getpid()}-{secrets.token_hex(3)}"


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh hidden sibling of ``out``; on success it replaces ``out`` (whose old
    contents are removed), on any failure it is removed and ``out`` stays as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out, "tmp")
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            old = _sibling(out, "old")
            os.rename(out, old)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_marker(folder: str | os.PathLike, command: str) -> None:
    """Record that ``folder`` holds a run of ``command``."""
    from .io import write_json

    write_json(Path(folder) / MARKER, {"command": command, "format_version": 1})


def claim(out: str | os.PathLike, command: str) -> Path:
    """Create ``out`` (resumed in place) and mark it as ``command``'s; call with the lock held."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, command)
    return out
