"""Artifacts: tensors in safetensors, everything else in JSON, every file written atomically.

lensteer never reads a pickle, and writes one kind only: the ``layer_{L}.pt`` payloads of
``lensteer export --format vllm-steer`` (:func:`lensteer.steering.export_vllm`) are
``torch.save`` files — a zip holding a pickle — because that is the format the paper's vLLM fork
loads. They hold only plain tensors, floats and strings, so ``torch.load(path,
weights_only=True)`` reads them without running code; load them only that way. Every other
file lensteer writes is safetensors, text (JSON, CSV, Markdown), SQLite or a PNG image.

>>> import tempfile, torch, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.safetensors"
>>> save_tensors(path, {"v": torch.ones(3)}, {"kind": "demo"})
>>> tensors, meta = load_tensors(path)
>>> tensors["v"].tolist(), meta
([1.0, 1.0, 1.0], {'kind': 'demo'})
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .errors import ArtifactError

_META_KEY = "lensteer"


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux
    ``/proc/self/status``); elsewhere set and restored at once under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode a new file gets from ``open``: ``0o666`` less the umask (0o644 under umask 022)."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step,
    with the mode a plain ``open`` would give it (``mkstemp``'s 0600 would ignore the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it takes ``path``'s place
    (an earlier folder there is removed after the swap), with the mode the umask gives.

    Readers see the old folder or the complete new one, never a half-written one (for an
    instant between the two renames, neither). On failure the temporary folder is removed and
    ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    old: Path | None = None  # holds the earlier folder during the swap
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if path.exists() or path.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.replace(path, old / "previous")
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                held, old = old, None  # never delete the earlier folder if it cannot go back
                os.replace(held / "previous", path)
                old = held
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def publish_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; on success it becomes ``path`` in one
    rename, with the mode the umask gives. For caches built once: if another process published
    ``path`` first, its complete copy is kept and this one dropped. On failure nothing is left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        try:
            os.rename(tmp, path)
        except OSError:  # another process won the race; its copy is complete
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically (indented, keys in insertion order)."""
    write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a corrupt one raises :class:`~lensteer.errors.ArtifactError`."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{path} is not valid JSON ({error}): it is corrupt or truncated; "
                            "write it again.") from None


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: Any) -> None:
    """One safetensors file holding ``tensors`` and JSON metadata ``meta``, written atomically."""
    with atomic_path(path) as tmp:
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
            str(tmp),
            metadata={_META_KEY: json.dumps(meta, allow_nan=False)},
        )


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Any]:
    """Read what :func:`save_tensors` wrote; unreadable files raise
    :class:`~lensteer.errors.ArtifactError`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No lensteer artifact at {path}: check the path.")
    if not path.is_file():
        raise ArtifactError(f"{path} is a folder, not a lensteer .safetensors file.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = (handle.metadata() or {}).get(_META_KEY)
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ArtifactError(
            f"{path} is not a readable safetensors file ({detail}): it is corrupt or truncated; "
            "write it again."
        ) from None
    if meta is None:
        raise ArtifactError(f"{path} is a safetensors file but not a lensteer artifact (no metadata).")
    try:
        return tensors, json.loads(meta)
    except ValueError:
        raise ArtifactError(f"{path} has damaged lensteer metadata (not JSON): write it again.") from None
