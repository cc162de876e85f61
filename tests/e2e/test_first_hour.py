"""A new user's first hour (issue 12), end to end on virtual boards through the CLI:
one board shared by several processes, no silent changes, plain errors."""

import json
import os
import subprocess

import pytest

from firsthour import ESME_ID, GSME_ID, gb, provisioned, registers
from simboards import GBMETER

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def variant():
    """These run on .py firmware only (the one-board concurrency test in
    test_shared_board.py runs in every variant)."""
    return "py"


# --- 2: options left out of manage-debt are unchanged ----------------------------------

@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_manage_debt_keeps_the_settings_it_is_not_given(start_board, tmp_path, device):
    b, opts = provisioned(start_board, tmp_path, device)
    r = gb("manage-debt", *opts, "--time1", 100, "--rate1", 30000, "--period1", "HOURLY",
           "--rate2", 1230, "--per-payment", 500, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    set_ = registers(b.port)
    assert (set_["time1_recovery"]["rate"], set_["time1_recovery"]["freq"]) == (30000, 0)
    assert (set_["time2_recovery"]["rate"], set_["time2_recovery"]["freq"]) == (1230, 1)
    assert set_["payment_recovery"]["pct"] == 500
    r = gb("manage-debt", *opts, "--time1", 5, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"], r.stdout + r.stderr
    assert set(out["recovery"]["unchanged"]) == {"rate1", "period1", "rate2", "period2",
                                                 "per-payment"}
    after = registers(b.port)
    assert after["time1"] == 105
    for k in ("time1_recovery", "time2_recovery", "payment_recovery"):
        assert after[k] == set_[k], k
    # one option given changes that one only
    assert gb("manage-debt", *opts, "--period2", "HOURLY").returncode == 0
    last = registers(b.port)
    assert last["time2_recovery"] == dict(set_["time2_recovery"], freq=0)
    assert last["time1_recovery"] == set_["time1_recovery"]
    assert "unchanged" in gb("manage-debt", "--help").stdout


# --- 3: provisioning never wipes a meter without being asked -----------------------------

def test_provisioning_another_identity_needs_factory_reset(start_board, tmp_path):
    b, opts = provisioned(start_board, tmp_path, "esme")
    k = opts[3]
    assert gb("diag", "set", "--port", b.port, "--time1", 30000, "--mode", "prepayment",
              "--clock", 500).returncode == 0
    before = registers(b.port)
    for other in (["--device", "gsme", "--id", ESME_ID], ["--device", "esme", "--id", GSME_ID]):
        r = gb("provision", "--port", b.port, "--keys", k, *other)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "--factory-reset" in r.stderr and "time1 30000" in r.stderr
        assert "nothing was changed" in r.stderr
        assert registers(b.port) == before
    r = gb("provision", "--port", b.port, "--keys", k, "--device", "gsme", "--id", ESME_ID,
           "--factory-reset")
    assert r.returncode == 0, r.stderr
    assert "factory reset: cleared" in r.stdout and "time1 30000" in r.stdout
    assert "mode prepayment" in r.stdout and "clock 500" in r.stdout
    after = registers(b.port)
    assert (after["device"], after["time1"], after["mode"], after["clock"]) == ("gsme", 0,
                                                                               "credit", 0)


def test_an_organisation_is_not_a_meter_id(start_board, tmp_path):
    b, opts = provisioned(start_board, tmp_path, "gsme")
    k = opts[3]
    parties = json.loads(gb("keys", "list", k, "--json").stdout)["parties"]
    orgs = [p for p in parties if p["role_code"] is not None]   # not the meter's own certs
    assert len(orgs) >= 4
    before = registers(b.port)
    for p in orgs:
        r = gb("provision", "--port", b.port, "--keys", k, "--device", "gsme",
               "--id", p["system_title"], "--factory-reset")
        assert r.returncode == 1 and p["role"] in r.stderr and str(k) in r.stderr, r.stderr
    assert registers(b.port) == before


def test_a_supplier_no_longer_trusted_loses_its_counter(start_board, tmp_path):
    b, opts = provisioned(start_board, tmp_path, "gsme")
    k = opts[3]
    first = json.loads(gb("keys", "list", k, "--json").stdout)["defaults"]["supplier"]
    assert gb("manage-debt", *opts, "--time1", 1).returncode == 0
    assert set(registers(b.port)["counters"]) == {first}
    parties = json.loads(gb("keys", "list", k, "--json").stdout)["parties"]
    second = next(p["system_title"] for p in parties
                  if p["role"] == "supplier" and p["system_title"] != first)
    r = gb("provision", "--port", b.port, "--keys", k, "--device", "gsme", "--id", GSME_ID,
           "--supplier", second, "--keep-keys")
    assert r.returncode == 0, r.stderr
    assert registers(b.port)["counters"] == {}
    r = gb("manage-debt", *opts, "--supplier", second, "--time1", 2, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(registers(b.port)["counters"]) == {second}


# --- 8: sr takes the next counter; an 8F53 says why ------------------------------------

def test_sr_takes_the_next_counter_and_explains_8f53(start_board, tmp_path, shared):
    zaz1 = shared / "gbcs" / "keys"
    request = shared / "gbcs" / "duis" / "GCS04_2.3_SUCCESS_REQUEST_DUIS.XML"
    if not request.exists():
        pytest.skip(f"{request.name} is not in ../shared")
    b = start_board("gsme")
    r = gb("provision", "--port", b.port, "--device", "gsme", "--id", GSME_ID, "--keys", zaz1)
    assert r.returncode == 0, r.stderr
    opts = ["--port", b.port, "--keys", zaz1, "--dcc-dir", tmp_path / "dcc", "--json"]
    counters = []
    for _ in range(2):      # the same file twice: both go, each with a new counter
        r = gb("sr", request, *opts)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["ok"], r.stdout + r.stderr
        counters.append(out["counter"])
    assert counters[1] > counters[0]
    r = gb("sr", request, *opts, "--keep-counter")     # the file's 1000: still new
    assert r.returncode == 0 and json.loads(r.stdout)["counter"] == 1000, r.stdout
    r = gb("sr", request, *opts[:-1], "--keep-counter")  # 1000 again: refused, and why
    assert r.returncode == 2 and "8F53" in r.stdout, r.stdout + r.stderr
    assert "counter 1000 is not above 1000" in r.stdout and "--keep-counter" in r.stdout
    r = gb("sr", request, *opts)
    assert r.returncode == 0 and json.loads(r.stdout)["counter"] == 1001


def test_8f53_from_a_stale_meter_key_names_the_mac(start_board, tmp_path):
    b, opts = provisioned(start_board, tmp_path, "gsme")
    k = opts[3]
    assert gb("manage-debt", *opts, "--time1", 1).returncode == 0
    saved = k / "meters" / f"{GSME_ID}.json"
    rec = json.loads(saved.read_text())
    other = json.loads(gb("provision", "--port", b.port, "--device", "gsme", "--id", GSME_ID,
                          "--keys", k, "--json").stdout)     # new key pairs on the meter
    assert other["ka_public_key"] != rec["ka"]
    saved.write_text(json.dumps(rec))        # the host still has the old ones
    r = gb("manage-debt", *opts, "--time1", 1)
    assert r.returncode == 2 and "8F53" in r.stdout
    assert "MAC" in r.stdout and "provision it again" in r.stdout, r.stdout


# --- 4, 5: sim checks what it is asked for ------------------------------------------------

def test_sim_refuses_another_device_for_a_folder(start_board, tmp_path):
    d = tmp_path / "flash"
    b = start_board("gsme", dir=d)
    assert b.stop() == 0
    r = gb("sim", "--dir", d, "--device", "esme", "--json", timeout=90)
    assert r.returncode == 1 and r.stdout == "", r.stdout + r.stderr
    assert "holds a GSME, not an ESME" in r.stderr and "--factory-reset" in r.stderr
    assert "Traceback" not in r.stderr
    again = start_board(None, dir=d)          # no --device: the folder's meter
    assert again.device == "gsme"
    # 13: plain ping and registers say it is not provisioned; no Python False
    assert "not provisioned" in gb("ping", "--port", again.port).stdout
    plain = gb("registers", "--port", again.port).stdout
    assert "not provisioned" in plain and "active: no" in plain and "False" not in plain


def test_sim_says_when_the_board_does_not_fit_its_heap(tmp_path):
    r = gb("sim", "--dir", tmp_path / "small", "--mpy", "--heap", "24K", timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "did not come up in a heap of 24K" in r.stderr and "64K" in r.stderr
    assert "Traceback" not in r.stderr


# --- 12: a way out of the quarantine ---------------------------------------------------

def test_quarantine_release_and_clear(start_board, tmp_path):
    b, opts = provisioned(start_board, tmp_path, "gsme")
    dcc = tmp_path / "dcc"
    dcc.mkdir()
    (dcc / "adt.json").write_text(json.dumps({"thresholds": [
        {"use_case": "GCS04a", "limit": 1, "window_seconds": 3600}]}))
    assert gb("reset-debt", *opts, "--register", "time1").returncode == 0
    assert gb("diag", "set", "--port", b.port, "--time2", 4000, "--payment", 3000).returncode == 0
    r = gb("reset-debt", *opts, "--register", "time2")
    assert r.returncode == 3
    assert f"--dcc-dir {dcc}" in r.stderr and "quarantine release 1" in r.stderr, r.stderr
    assert gb("reset-debt", *opts, "--register", "payment").returncode == 3
    listed = json.loads(gb("quarantine", "list", "--dcc-dir", dcc, "--json").stdout)
    assert [q["id"] for q in listed["quarantined"]] == [1, 2]
    assert registers(b.port)["time2"] == 4000
    r = gb("quarantine", "release", 1, "--port", b.port, "--keys", opts[3], "--dcc-dir", dcc,
           "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"] and out["use_case"] == "GCS04a", r.stdout + r.stderr
    after = registers(b.port)
    assert (after["time2"], after["payment"]) == (0, 3000)
    r = gb("quarantine", "release", 1, "--port", b.port, "--keys", opts[3], "--dcc-dir", dcc)
    assert r.returncode == 1 and "no quarantined Command 1" in r.stderr   # not twice
    assert gb("quarantine", "clear", "--dcc-dir", dcc).returncode == 64
    assert gb("quarantine", "clear", 2, 9, "--dcc-dir", dcc).returncode == 1   # 9: none
    assert gb("quarantine", "clear", 2, "--dcc-dir", dcc).returncode == 0
    listed = json.loads(gb("quarantine", "list", "--dcc-dir", dcc, "--json").stdout)
    assert listed["quarantined"] == []
    kinds = [n["kind"] for n in listed["notifications"]]
    assert kinds == ["threshold", "threshold", "released", "cleared"]
    assert registers(b.port)["payment"] == 3000         # cleared: never sent


# --- 6: Ctrl-C during a Command says what is known -----------------------------------------

class DropAnswers:
    """A pty between the CLI and a board that passes everything through until the CLI
    sends a GBCS Command, which reaches the meter, and then drops what the meter
    answers: the CLI sees a board that took the Command and never answered."""

    GBCS_FRAME = b"GM\x01"

    def __init__(self, board_port):
        import pty
        import threading
        import tty
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.board = os.open(board_port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.board)
        self.sent = threading.Event()       # the Command went to the meter
        self.answered = threading.Event()   # the meter answered it (dropped)
        self.stop = threading.Event()
        self.seen = b""
        self.thread = threading.Thread(target=self.pump, daemon=True)
        self.thread.start()

    def pump(self):
        import select
        while not self.stop.is_set():
            r, _, _ = select.select([self.master, self.board], [], [], 0.1)
            for fd in r:
                data = os.read(fd, 4096)
                if fd == self.master:
                    self.seen += data
                    if self.GBCS_FRAME in self.seen:
                        self.sent.set()
                    os.write(self.board, data)
                elif self.sent.is_set():
                    self.answered.set()      # dropped
                else:
                    os.write(self.master, data)

    def close(self):
        self.stop.set()
        self.thread.join(2)
        for fd in (self.master, self.slave, self.board):
            os.close(fd)


def test_ctrl_c_during_a_command_says_it_was_sent(start_board, tmp_path):
    import signal
    b, opts = provisioned(start_board, tmp_path, "gsme")
    relay = DropAnswers(b.port)
    try:
        args = [a if a != b.port else relay.port for a in map(str, opts)]
        p = subprocess.Popen([GBMETER, "manage-debt", *args, "--time1", "7"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert relay.answered.wait(60), "the meter never answered the Command"
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        relay.close()
    assert p.returncode == 130, (out, err)
    assert "Traceback" not in err and out == ""
    assert "interrupted: the Command was sent; no answer read" in err, err
    assert f"check with `gbmeter registers --port {relay.port}`" in err
    assert registers(b.port)["time1"] == 7       # it was: what the words said may be so


# --- 13: the small ones -------------------------------------------------------------------

def test_small_ones_say_what_happened(start_board, tmp_path):
    b, opts = provisioned(start_board, tmp_path, "gsme")
    k = opts[3]
    # a diagnostic's error names the CLI's option
    r = gb("diag", "set", "--port", b.port, "--time1-coll", 5000)
    assert r.returncode == 1 and "--time1-coll must be a whole number 0..1439" in r.stderr
    assert "time1_coll" not in r.stderr
    # a fault armed past the Command's last part: said, not used up silently
    assert gb("diag", "fault", "--port", b.port, "--at", 5, "--status", "hardware").returncode == 0
    assert "pending fault: part 5" in gb("registers", "--port", b.port).stdout
    r = gb("reset-debt", *opts, "--register", "time1")
    assert r.returncode == 0 and "fault armed at part 5 was not reached" in r.stdout, r.stdout
    assert registers(b.port)["fault"] is None
    # 8F60 after a run of refused Commands: the refusal's own alert stays in sight
    sent = json.loads(gb("manage-debt", *opts, "--time1", 1, "--json").stdout)["command"]
    for i in range(5):           # the same bytes again: a replayed counter each time
        r = gb("send", sent, "--port", b.port, "--keys", k, "--json")
        out = json.loads(r.stdout)
        assert r.returncode == 2 and out["alert"] == "8F53", out
    assert out["alerts"] == ["8F53", "8F60"]
    plain = gb("send", sent, "--port", b.port, "--keys", k).stdout
    assert "alert 8F53" in plain and "not above" in plain
    assert "8F60" in out["reason"] and "alert 8F53 and then raised 8F60" in out["reason"]
    # whole pence: what the meter made of a value is said
    r = gb("provision", "--port", b.port, "--keys", k, "--device", "gsme", "--id", GSME_ID,
           "--setting", "whole-pence=true", "--keep-keys")
    assert r.returncode == 0, r.stderr
    r = gb("diag", "set", "--port", b.port, "--time1", 555, "--balance", 2000)
    assert r.returncode == 0 and "--time1 555 is held as 0" in r.stdout, r.stdout
    assert "--balance" not in r.stdout                       # 2000 is whole pence
    r = gb("diag", "set", "--port", b.port, "--time2", 1999, "--json")
    assert json.loads(r.stdout)["held"] == {"time2": 1000}


def test_demo_leaves_no_keys_in_the_temp_folder(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    r = gb("demo", env=dict(os.environ, TMPDIR=str(tmp)), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "made a test PKI in" in r.stdout
    left = [p.name for p in tmp.iterdir() if p.name.startswith("gbmeter-") and
            p.name != "gbmeter-locks"]
    assert left == [], left
