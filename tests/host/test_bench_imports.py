"""`make bench` is not run by the suite (its figures take minutes), but its modules
must still import: a moved function once broke it unseen."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_every_bench_module_imports():
    mods = sorted(p.stem for p in BENCH.glob("*.py"))
    assert "run" in mods
    code = f"import sys; sys.path.insert(0, {str(BENCH)!r})\n" + "".join(f"import {m}\n" for m in mods)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
