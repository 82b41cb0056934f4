"""Artifacts: tensors in safetensors, everything else in JSON, every file written atomically.

Nothing lensteer writes or reads is a pickle.

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
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .errors import ArtifactError

_META_KEY = "lensteer"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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
