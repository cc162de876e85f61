"""End-to-end fixtures: virtual boards started with `gbmeter sim --json`, exactly as a
user starts them. Every e2e test runs in three variants: firmware deployed as .py,
as mpy-cross compiled .mpy, and as .mpy in a small unix-port heap (simboards.py)."""

import pytest

from simboards import VARIANTS, SimBoard

@pytest.fixture(params=list(VARIANTS), scope="module")
def variant(request):
    return request.param


@pytest.fixture
def start_board(tmp_path, variant):
    """Factory: start_board(device="gsme", dir=None, profile=None) -> SimBoard, stopped
    after the test."""
    boards = []

    def start(device="gsme", dir=None, profile=None):
        extra = VARIANTS[variant] + (["--profile", profile] if profile else [])
        b = SimBoard(dir or tmp_path / f"board{len(boards)}", device, extra)
        boards.append(b)
        return b

    yield start
    for b in boards:
        b.stop()


@pytest.fixture
def board(start_board):
    return start_board("gsme")
