"""The qemu board's host side (gbmeter.board.qemu) without running qemu: heap sizes,
which boards are qemu boards, what is missing to build one, and the image cache
named by what it is built from. Running it is tests/e2e/test_qemu.py."""

import shutil

import pytest

from gbmeter import paths
from gbmeter.board import qemu
from gbmeter.errors import UserError


def test_heap_sizes():
    assert qemu.heap_bytes("64K") == qemu.heap_bytes("65536") == 65536
    assert qemu.heap_bytes("1m") == 1024 * 1024
    for bad, word in (("8K", "16K to 1M"), ("2M", "16K to 1M"), ("lots", "give bytes"),
                      ("64KB", "give bytes"), ("", "give bytes")):
        with pytest.raises(UserError, match=word):
            qemu.heap_bytes(bad)


def test_qemu_boards_name_their_machine():
    assert qemu.is_qemu_board("qemu_mps2")
    assert qemu.board_settings("qemu_mps2")["machine"] == "mps2-an385"
    assert not qemu.is_qemu_board("unix") and not qemu.is_qemu_board("no_such_board")
    with pytest.raises(UserError, match="names no qemu machine"):
        qemu.QemuBoard(board="unix")


def test_missing_tools_named_with_their_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    why = qemu.missing()
    assert "not found" in why and "gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm" in why
    with pytest.raises(paths.ToolMissing, match="cannot build the qemu_mps2 board"):
        qemu.source()


needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("make", qemu.CC, qemu.QEMU)),
    reason="the qemu board's toolchain is not installed")


@needs_tools
def test_missing_source_named(monkeypatch, tmp_path):
    monkeypatch.setenv("MICROPYTHON_SRC", str(tmp_path))
    assert "not a MicroPython source tree" in qemu.missing()
    monkeypatch.delenv("MICROPYTHON_SRC")
    monkeypatch.setenv("GBMETER_SHARED", str(tmp_path))  # no reference data there
    assert "no MicroPython source" in qemu.missing()
    (tmp_path / "ports" / "qemu").mkdir(parents=True)
    (tmp_path / "ports" / "qemu" / "Makefile").write_text("")
    monkeypatch.setenv("MICROPYTHON_SRC", str(tmp_path))
    assert qemu.missing() is None
    assert qemu.source() == (tmp_path.resolve(), f"checkout {tmp_path.resolve()}")


def test_image_cache_named_by_source_and_board_files(monkeypatch, tmp_path):
    boards = tmp_path / "boards"
    shutil.copytree(paths.BOARDS / "qemu_mps2", boards / "qemu_mps2")
    monkeypatch.setattr(paths, "BOARDS", boards)
    first = qemu.build_dir("qemu_mps2", "archive 1")
    assert qemu.build_dir("qemu_mps2", "archive 1") == first
    assert qemu.build_dir("qemu_mps2", "archive 2") != first          # another source
    (boards / "qemu_mps2" / "board.json").write_text("{}")             # run-time only
    assert qemu.build_dir("qemu_mps2", "archive 1") == first
    c = boards / "qemu_mps2" / "board.c"
    c.write_text(c.read_text() + "\n// changed\n")
    assert qemu.build_dir("qemu_mps2", "archive 1") != first          # a board file
    (boards / "qemu_mps2" / "mpconfigboard.mk").unlink()
    with pytest.raises(UserError, match="mpconfigboard.mk is missing"):
        qemu.build_dir("qemu_mps2", "archive 1")
