"""The README's walkthrough, run as written (issue 12 item 14): the `sim` block in the
background as the first terminal, then every `steps` block in a shell as the second
terminal, with GBMETER_PORT set to the port sim printed, as the README says to do.
The folder it runs in has `../shared` beside it, as a checkout does."""

import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gbmeter import paths

pytestmark = pytest.mark.e2e

README = paths.ROOT / "README.md"
BIN = str(Path(sys.executable).parent)


def blocks(kind):
    """The ```sh blocks that follow a `<!-- walkthrough: kind -->` marker."""
    text = README.read_text()
    return re.findall(rf"<!-- walkthrough: {kind} -->\s*```sh\n(.*?)```", text, re.S)


def test_readme_walkthrough_as_written(tmp_path, shared):
    (sim_block,) = blocks("sim")
    steps = blocks("steps")
    assert len(steps) >= 2 and "reset-debt" in steps[0] and "sr " in steps[1]
    work = tmp_path / "checkout"
    work.mkdir()
    (tmp_path / "shared").symlink_to(shared)          # ../shared, as beside a checkout
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"])
    env.pop("GBMETER_PORT", None)
    sim = subprocess.Popen(["bash", "-c", sim_block], cwd=work, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True)
    try:
        ready, _, _ = select.select([sim.stdout], [], [], 90)
        line = sim.stdout.readline() if ready else ""
        m = re.search(r"^virtual GSME \(smets2\) on (\S+) ", line)
        assert m, f"sim printed {line!r}"
        env["GBMETER_PORT"] = m.group(1)
        outs = []
        for block in steps:
            r = subprocess.run(["bash", "-e", "-c", block], cwd=work, env=env, text=True,
                               capture_output=True, timeout=300)
            assert r.returncode == 0, f"{block}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
            assert "Traceback" not in r.stderr
            outs.append(r.stdout)
        first, second = outs[0], outs[1]
        assert "not provisioned" in first.split("\n", 2)[1]          # the ping
        assert "provisioned GSME 00db1234567890a1" in first
        assert re.search(r"Time Debt Register 1 +250000", first)
        assert "success, Response signature verified (component 1 SUCCESS): time1 is zero" in first
        assert re.search(r"Time Debt Register 1 +0 ", first)
        assert "GCS04a" in second and "success, Response signature verified" in second
        final = json.loads(second.strip().splitlines()[-1])
        assert (final["time1"], final["time2"]) == (0, 0)
        assert (work / "board").is_dir() and (work / "reset-time2.xml").exists()
    finally:
        if sim.poll() is None:
            os.killpg(sim.pid, signal.SIGINT)       # Ctrl-C in the first terminal
        sim.wait(30)
    assert sim.returncode == 0, sim.stderr.read()
