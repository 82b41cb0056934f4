"""Atomic writes: the files lensteer writes get the mode the umask says, like any other file."""
from __future__ import annotations

import os
import stat

import pytest
import torch

from lensteer import io


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640)],
                         ids=["umask022", "umask027"])
def test_atomic_writes_honour_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    io.write_json(tmp_path / "a.json", {"x": 1})
    io.write_text(tmp_path / "b.txt", "hello")
    io.save_tensors(tmp_path / "c.safetensors", {"v": torch.ones(2)}, {"kind": "demo"})
    with io.atomic_path(tmp_path / "d.bin") as tmp:
        tmp.write_bytes(b"\0")
    (tmp_path / "plain.txt").write_text("plain")  # what an ordinary open gives, for reference
    assert mode(tmp_path / "plain.txt") == expected
    for name in ("a.json", "b.txt", "c.safetensors", "d.bin"):
        assert mode(tmp_path / name) == expected, name
    # replacing an existing file gives it the umask's mode too, and leaves no temporary behind
    io.write_json(tmp_path / "a.json", {"x": 2})
    assert mode(tmp_path / "a.json") == expected and io.read_json(tmp_path / "a.json") == {"x": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json", "b.txt", "c.safetensors", "d.bin", "plain.txt"]


def test_current_umask_reads_without_changing_it(umask):
    umask(0o027)
    assert io.current_umask() == 0o027 and io.file_mode() == 0o640
    assert os.umask(0o027) == 0o027  # unchanged by the read


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"), io.atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_publish_dir_honours_the_umask_keeps_the_first_copy_and_leaves_nothing_on_failure(tmp_path):
    from lensteer.io import publish_dir

    old = os.umask(0o027)
    try:
        with publish_dir(tmp_path / "cache") as tmp:
            (tmp / "a").write_text("first")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "cache").st_mode & 0o777 == 0o750  # not mkdtemp's 0700
    with publish_dir(tmp_path / "cache") as tmp:  # a racing second writer: its copy is dropped
        (tmp / "a").write_text("second")
    assert (tmp_path / "cache" / "a").read_text() == "first"
    with pytest.raises(RuntimeError):
        with publish_dir(tmp_path / "other") as tmp:
            (tmp / "half").write_text("x")
            raise RuntimeError("conversion failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
