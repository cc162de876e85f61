"""What the issue-12 e2e tests share: the CLI as a user runs it, and a provisioned
virtual GSME."""

import json
import subprocess

from simboards import GBMETER

GSME_ID, ESME_ID = "00db1234567890a1", "00db1234567890a0"


def gb(*args, env=None, timeout=120, input=None):
    return subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, input=input)


def registers(port):
    r = gb("registers", "--port", port, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def provisioned(start_board, tmp_path, device="gsme", meter_id=None):
    """A provisioned virtual board and the options for sending to it."""
    b = start_board(device)
    k = tmp_path / "keys"
    if not k.exists():
        assert gb("keys", "init", k).returncode == 0
    meter_id = meter_id or (GSME_ID if device == "gsme" else ESME_ID)
    r = gb("provision", "--port", b.port, "--device", device, "--id", meter_id, "--keys", k)
    assert r.returncode == 0, r.stderr
    return b, ["--port", b.port, "--keys", k, "--dcc-dir", tmp_path / "dcc"]
