"""A new user's first hour (issue 12) where no board is needed: usage errors and exit
codes, Ctrl-C at any instant, plain errors for careless input, one key place per
user. A pseudo-terminal that nobody answers stands for a board that does not answer
(the test reads what gbmeter wrote to it)."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest

from gbmeter import cli, paths
from gbmeter.gbcs import pki
from gbmeter.supplier import session

GBMETER = str(Path(sys.executable).parent / "gbmeter")
README = paths.ROOT / "README.md"


def gb(*args, env=None, cwd=None, timeout=120):
    return subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def run(capsys, *argv):
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def silent_port():
    """A port that takes frames and never answers: (path, master fd)."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave), master
    os.close(slave)
    os.close(master)


def wait_for_frame(master, timeout=20):
    """Read the pty until a whole frame header arrives; what was written."""
    got = b""
    end = time.monotonic() + timeout
    while b"GM" not in got or len(got) < got.index(b"GM") + 8:
        r, _, _ = select.select([master], [], [], max(0, end - time.monotonic()))
        assert r, f"no frame written within {timeout} s: {got!r}"
        got += os.read(master, 4096)
    return got


# --- 7: exit codes --------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["ping"],                                        # --port missing
    ["ping", "--port", "P", "--timeout", "-1"],      # 13: a timeout must be above 0
    ["manage-debt", "--port", "P", "--time1", "x"],
    ["sim", "--device", "water"],
    ["nosuchverb"],
    [],
    ["keys"],
    ["quarantine"],
    ["diag", "set", "--port", "P", "--time1-freq", "3600"],
    ["diag", "fault", "--port", "P", "--at", "99", "--status", "hardware"],
])
def test_usage_errors_exit_64(capsys, argv):
    rc, out, err = run(capsys, *argv)
    assert rc == 64, (argv, rc, out, err)
    assert "Traceback" not in err


def test_usage_error_of_the_installed_command_is_64_and_names_the_option():
    r = gb("diag", "set", "--port", "P", "--time1-freq", "3600")
    assert r.returncode == 64 and "--time1-freq" in r.stderr and "HOURLY or DAILY" in r.stderr
    r = gb("diag", "fault", "--port", "P", "--at", "99", "--status", "hardware")
    assert r.returncode == 64 and "--at 99" in r.stderr and "10" in r.stderr


def exit_codes():
    from gbmeter.cli import _parser
    return re.findall(r"^  (\d+) ", _parser.EXIT_CODES, re.M)


def test_every_exit_code_is_in_help_and_readme(capsys):
    codes = exit_codes()
    assert codes == ["0", "1", "2", "3", "4", "5", "64", "130"]
    for argv in (["--help"], ["reset-debt", "--help"], ["diag", "set", "--help"]):
        rc, out, _ = run(capsys, *argv)
        assert rc == 0
        listed = re.findall(r"^  (\d+) ", out.split("exit codes:")[1], re.M)
        assert listed == codes, argv
    text = README.read_text()
    table = text.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    assert re.findall(r"^\| `(\d+)` \|", table, re.M) == codes


def test_version_is_the_firmwares():
    r = gb("--version")
    fw = re.search(r'^VERSION = "([^"]+)"', (paths.FIRMWARE / "appdiag.py").read_text(), re.M)
    assert r.returncode == 0 and r.stdout.split()[1] == fw.group(1), r.stdout
    assert f"firmware {fw.group(1)}" in r.stdout


# --- 6: Ctrl-C and careless input: never a traceback --------------------------------------

# Ctrl-C delivered at the n-th module import of a run of `gbmeter <argv>`, once the
# console script has imported gbmeter.cli (before that is Python's own start-up): the
# instants a person's Ctrl-C most often lands in, at the start of any verb.
AT_IMPORT = """
import os, signal, sys
from gbmeter.cli import main
n, argv = int(sys.argv[1]), sys.argv[2:]
seen = [0]
def hook(event, args):
    if event == "import":
        seen[0] += 1
        if seen[0] == n:
            os.kill(os.getpid(), signal.SIGINT)
sys.addaudithook(hook)
rc = main(argv)
sys.stderr.write("imports %d\\n" % seen[0])
sys.exit(rc)
"""


def test_ctrl_c_while_a_verb_starts_is_no_traceback(tmp_path):
    argv = ["registers", "--port", str(tmp_path / "no-such-port")]
    first = subprocess.run([sys.executable, "-c", AT_IMPORT, "0", *argv],
                           capture_output=True, text=True, timeout=60)
    total = int(first.stderr.split("imports ")[-1])
    assert first.returncode == 1 and total > 50, first.stderr
    for n in range(1, total, max(1, total // 25)):
        r = subprocess.run([sys.executable, "-c", AT_IMPORT, str(n), *argv],
                           capture_output=True, text=True, timeout=60)
        assert "Traceback" not in r.stderr, (n, r.stderr)
        assert r.returncode == 130 and "interrupted" in r.stderr, (n, r.returncode, r.stderr)


def test_ctrl_c_while_waiting_says_what_was_sent(silent_port):
    port, master = silent_port
    # a read: nothing was changed, so nothing to say but "interrupted"
    p = subprocess.Popen([GBMETER, "registers", "--port", port], stderr=subprocess.PIPE,
                         text=True)
    wait_for_frame(master)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=30)[1]
    assert p.returncode == 130 and err.strip() == "gbmeter registers: interrupted", err
    # a diagnostic that changes the meter: it went out, and whether it ran is unknown
    p = subprocess.Popen([GBMETER, "diag", "set", "--port", port, "--time1", "5"],
                         stderr=subprocess.PIPE, text=True)
    sent = wait_for_frame(master)
    assert b'"time1": 5' in sent
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=30)[1]
    assert p.returncode == 130 and "Traceback" not in err
    assert "the set diagnostic was sent; no answer read" in err
    assert f"check with `gbmeter registers --port {port}`" in err


def test_unanswered_changing_request_is_outcome_unknown(silent_port):
    port, _ = silent_port
    r = gb("diag", "topup", "--port", port, "1000", "--timeout", "0.5")
    assert r.returncode == 5, r.stderr
    assert "no answer from" in r.stderr and "the topup diagnostic was sent" in r.stderr
    r = gb("ping", "--port", port, "--timeout", "0.5")     # a read: plain error, exit 1
    assert r.returncode == 1 and "is it a gbmeter board" in r.stderr


def test_gbmeter_port_saves_typing_port(silent_port):
    port, _ = silent_port
    env = dict(os.environ, GBMETER_PORT=port)
    r = gb("ping", "--timeout", "0.3", env=env)
    assert r.returncode == 1 and f"no answer from {port}" in r.stderr, r.stderr
    env["GBMETER_PORT"] = ""                              # empty: as if unset
    assert gb("ping", env=env).returncode == 64


@pytest.mark.parametrize("argv, words", [
    (["sim", "--dir", "{file}"], "that is a file, not a board folder"),
    (["sim", "--dir", "{file}/sub"], "cannot make a board folder"),
    (["demo", "--keep", "{file}"], "that is a file, not a folder"),
    (["sim", "--heap", "abc"], "give a size in bytes"),
    (["sim", "--heap", "0"], "give 16K to"),
    (["sim", "--heap", "8K"], "the firmware is made to fit 64K"),
    (["deploy", "--board", "unix", "--port", "/dev/gbmeter-none"], "no such port"),
])
def test_careless_input_gets_a_plain_error(capsys, tmp_path, argv, words):
    f = tmp_path / "a-file"
    f.write_text("not a folder")
    rc, out, err = run(capsys, *[a.replace("{file}", str(f)) for a in argv])
    assert rc == 1 and words in err, (rc, err)
    assert "Traceback" not in err and "may be in use" not in err
    assert f.read_text() == "not a folder"


def test_deploy_to_a_dead_port_says_it_is_waiting_and_gives_up(silent_port):
    port, _ = silent_port
    t0 = time.monotonic()
    r = gb("deploy", "--board", "unix", "--py", "--port", port, "--timeout", "3")
    assert r.returncode == 1 and time.monotonic() - t0 < 60, r.stderr
    assert "copying" in r.stderr and "gives up after 3 s" in r.stderr
    assert f"mpremote got no answer from {port} within 3 s" in r.stderr


def test_bad_pem_names_its_path_once(capsys, tmp_path):
    k = tmp_path / "keys"
    made = pki.init(k)
    bad = k / f"{made['supplier']}-ds.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    rc, out, err = run(capsys, "keys", "list", k)
    assert rc == 1 and err.count(str(bad)) == 1, err


# --- 10: one key place per user ------------------------------------------------------------

def test_default_key_folder_is_one_per_user(tmp_path, monkeypatch):
    monkeypatch.delenv("GBMETER_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    want = tmp_path / "xdg" / "gbmeter" / "keys"
    seen = set()
    for cwd in ("a", "b/c"):
        (tmp_path / cwd).mkdir(parents=True)
        monkeypatch.chdir(tmp_path / cwd)
        seen.add(session.Session().keys.path)
    assert seen == {want}
    assert not (tmp_path / "a" / ".gbmeter").exists()
    monkeypatch.setenv("GBMETER_HOME", str(tmp_path / "mine"))      # still overrides
    assert session.default_keys() == tmp_path / "mine" / "keys"


def test_first_use_of_the_default_folder_is_said(tmp_path):
    env = dict(os.environ, GBMETER_HOME=str(tmp_path / "home"))
    r = gb("send", "00", "--port", tmp_path / "none", env=env, cwd=tmp_path)
    assert f"made a new test PKI in {tmp_path / 'home' / 'keys'}" in r.stderr, r.stderr


def test_key_errors_name_the_folder(capsys, tmp_path):
    k = tmp_path / "keys"
    pki.init(k)
    s = session.Session(k)
    with pytest.raises(session.UserError) as e:
        s.meter_key("00db1234567890ff", "ka")
    assert str(k) in str(e.value)
    rc, out, err = run(capsys, "reset-debt", "--port", "P", "--register", "time1", "--keys",
                       k, "--supplier", s.acb().eui)
    assert rc == 1 and str(k) in err, err
