"""SR 4.3 and 1.6 end to end on virtual boards of both fuels, in every variant (the
small-heap one too: a read serves in 64K): registers set locally and read over GBCS
(`gbmeter read`, MAC checked and decrypted) match `registers --json`; each register
reset reads back zero over GBCS; credit mode set over GBCS recovers nothing as the
clock moves, prepayment resumes the recovery; a read Response whose ciphertext or
tag was changed fails its check and yields no value."""

import json
import subprocess

import pytest

from gbmeter.gbcs import codec, crypto
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import check_answer

from simboards import GBMETER

pytestmark = pytest.mark.e2e

IDS = {"gsme": "00db1234567890a1", "esme": "00db1234567890a0"}
READ_KEYS = ("time1", "time2", "payment", "balance", "ec_balance", "acc_debt")
HOUR = 3600


def gb(*args, timeout=120):
    return subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def ok_json(*args):
    r = gb(*args, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def registers(port):
    return ok_json("registers", "--port", port)


def read(port, keys):
    out = ok_json("read", "--port", port, "--keys", keys)
    assert out["ok"] and out["mac_valid"] is True and out["decrypted"] is True, out
    assert "signature_valid" not in out          # a non-critical Response is MAC'd only
    return out


def board(start_board, tmp_path, device):
    b = start_board(device)
    k = tmp_path / "keys"
    if not k.exists():
        assert gb("keys", "init", k).returncode == 0
    assert gb("provision", "--port", b.port, "--device", device, "--id", IDS[device],
              "--keys", k).returncode == 0
    return b, k


@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_read_reset_and_payment_mode_over_gbcs(start_board, tmp_path, device):
    b, k = board(start_board, tmp_path, device)
    send = ["--port", b.port, "--keys", k, "--dcc-dir", tmp_path / "dcc"]
    assert gb("diag", "set", "--port", b.port, "--time1", 123000, "--time2", 45600,
              "--payment", 78900, "--balance", -1200, "--ec-balance", 3400, "--acc-debt",
              5600).returncode == 0
    got = read(b.port, k)
    regs = registers(b.port)
    assert got["registers"] == {key: regs[key] for key in READ_KEYS}
    assert got["use_case"] == ("GCS14" if device == "gsme" else "ECS19")
    if device == "gsme":
        assert (got["currency"], got["trailing_digits"]) == (826, 5)
    # the read's counter is the one the meter accepted: it moved, nothing else did
    assert regs["counters"] == {Session(k).supplier.eui: got["counter"]}
    # each register reset, then read back as zero over GBCS (the others untouched)
    for reg in ("time1", "time2", "payment"):
        assert ok_json("reset-debt", *send, "--register", reg)["ok"]
        after = read(b.port, k)["registers"]
        assert after[reg] == 0
        assert after == {key: registers(b.port)[key] for key in READ_KEYS}
    assert after["balance"] == -1200 and after["acc_debt"] == 5600
    # credit mode over GBCS: the clock moves, nothing is recovered
    assert gb("diag", "set", "--port", b.port, "--time1", 50000, "--time1-rate", 1000,
              "--time1-freq", "HOURLY", "--balance", 100000, "--mode", "prepayment").returncode == 0
    r = ok_json("payment-mode", *send, "credit")
    assert r["ok"] and r["use_case"] == ("GCS02" if device == "gsme" else "ECS02")
    assert registers(b.port)["mode"] == "credit"
    assert gb("diag", "advance", "--port", b.port, 5 * HOUR).returncode == 0
    assert read(b.port, k)["registers"]["time1"] == 50000
    assert registers(b.port)["balance"] == 100000
    # prepayment over GBCS: recovery resumes from then on
    r = ok_json("payment-mode", *send, "prepayment")
    assert r["ok"] and r["use_case"] == ("GCS03" if device == "gsme" else "ECS03")
    assert registers(b.port)["mode"] == "prepayment"
    assert gb("diag", "advance", "--port", b.port, 2 * HOUR).returncode == 0
    now = read(b.port, k)["registers"]
    assert now["time1"] == 48000 and now["balance"] == 98000
    assert now == {key: registers(b.port)[key] for key in READ_KEYS}


def test_tampered_read_response_fails_its_checks(start_board, tmp_path):
    b, k = board(start_board, tmp_path, "esme")
    got = read(b.port, k)
    resp = bytes.fromhex(got["response"])
    m = codec.parse_message(resp)
    s = Session(k)
    z = s.read_key(IDS["esme"])
    at = resp.index(b"\x31\x00\x00\x00\x00")
    n = resp[at - 1]                     # the octet string's length: 31.. ct tag
    for i in (at + 5, at + n - 1):       # a ciphertext byte, a tag byte
        bad = bytearray(resp)
        bad[i] ^= 1
        # gbmeter parse --keys: the MAC and the encrypted part both fail, no value shown
        d = ok_json("parse", bytes(bad).hex(), "--keys", k)
        assert d["mac_valid"] is False and d["decryption_valid"] is False and not d["decrypted"]
        # the sending side's check: even with a MAC made anew over the altered bytes
        # (as only someone holding the key could), the ciphertext does not open
        remac = crypto.wrap_with_z(z, codec.parse_message(bytes(bad))["apdu"])

        class Frame:
            type, payload = 0x02, remac
        cmd = codec.parse_message(bytes.fromhex(got["command"]))["apdu"]
        r = check_answer(s, cmd, [Frame])
        assert r["ok"] is False and r["mac_valid"] is True and r["decrypted"] is False
        assert "registers" not in r and "do not open" in r["reason"]
        Frame.payload = bytes(bad)
        r = check_answer(s, cmd, [Frame])
        assert r["ok"] is False and r["mac_valid"] is False and "registers" not in r
    # the genuine Response still checks and opens
    class Genuine:
        type, payload = 0x02, resp
    r = check_answer(s, codec.parse_message(bytes.fromhex(got["command"]))["apdu"], [Genuine])
    assert r["ok"] and r["registers"] == got["registers"]
    assert m["counter"] == got["counter"] and m["mac"] is not None and m["signature"] is None
