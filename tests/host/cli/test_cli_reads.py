"""`gbmeter parse --keys` on the reads' Responses (decrypted, or reported as failing)
and `gbmeter wrap` on non-critical Commands, with the RTDS messages and the ZAZ1
keys (skipped without ../shared); `read` and `payment-mode` refuse bad options with
usage errors before touching a port."""

import json

import pytest
import rtdsref

from gbmeter import cli, paths
from gbmeter.gbcs import codec, protected

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (RTDS and ZAZ1 keys) is absent")

READS = {"4.3_ECS19/ECS19_4.3_SUCCESS": ("00db1234567890a0",
                                        {"ec_balance": 250000, "acc_debt": 95000,
                                         "payment": 187000, "time1": 203000,
                                         "time2": 243000, "balance": 46000}),
         "4.3_GCS14/GCS14_4.3_SUCCESS_RELIABLE_GSME": ("00db1234567890a3",
                                                      {"acc_debt": 2500000, "ec_balance": 500000,
                                                       "balance": 2500000, "time1": 5000,
                                                       "time2": 5000, "payment": 5000})}


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def hexfile(name):
    return (rtdsref.rtds_dir() / name).read_text().strip()


@needs_shared
@pytest.mark.parametrize("prefix", sorted(READS))
def test_parse_decrypts_rtds_reads_and_refuses_tampered_ones(capsys, prefix):
    _, want = READS[prefix]
    keys = rtdsref.keys_dir()
    resp = hexfile(prefix + "_RESPONSE_GBCS.HEX")
    rc, out, err = run(capsys, "parse", resp, "--keys", keys, "--json")
    d = json.loads(out)
    assert rc == 0 and d["mac_valid"] is True and d["decryption_valid"] is True
    assert d["decrypted"]["registers"] == want
    rc, text, _ = run(capsys, "parse", resp, "--keys", keys)
    assert "decrypted (the encrypted registers opened" in text
    assert f"time1: {want['time1']}" in text
    # without keys nothing is decrypted, nor claimed
    d = json.loads(run(capsys, "parse", resp, "--json")[1])
    assert "decryption_valid" not in d and "decrypted" not in d
    # a byte of the ciphertext or of the tag changed: failing, and no value shown
    data = bytes.fromhex(resp)
    m = codec.parse_message(data)
    (_, sealed, _), = protected.sealed_parts(
        m["message_code"], codec.decode_content(m["message_code"], m["content"]))
    at = data.index(sealed)
    for i in (at + 6, at + len(sealed) - 1):      # the ciphertext, the tag
        bad = bytearray(data)
        bad[i] ^= 1
        rc, out, _ = run(capsys, "parse", bytes(bad).hex(), "--keys", keys, "--json")
        d = json.loads(out)
        assert rc == 0 and d["mac_valid"] is False and d["decryption_valid"] is False
        assert d["decrypted"] is None
        rc, text, _ = run(capsys, "parse", bytes(bad).hex(), "--keys", keys)
        assert "decrypted: INVALID" in text and f"time1: {want['time1']}" not in text


@needs_shared
@pytest.mark.parametrize("prefix", sorted(READS))
def test_wrap_macs_non_critical_commands(capsys, prefix):
    meter, _ = READS[prefix]
    cmd = bytes.fromhex(hexfile(prefix + "_COMMAND_GBCS.HEX"))
    pre = codec.parse_message(cmd)["precommand"]
    args = ("wrap", "--acb-key", rtdsref.key(rtdsref.ACB, "ka", private=True),
            "--meter-ka", rtdsref.key(meter, "ka"))
    for given in (pre, pre + b"\x00"):          # the PRECOMMAND, or with signature length 00
        rc, out, err = run(capsys, *args, given.hex())
        assert rc == 0 and bytes.fromhex(out.strip()) == cmd, err
    # signed, a non-critical Command is refused (the meter would answer 8F1E)
    rc, _, err = run(capsys, *args, (pre + b"\x40" + bytes(64)).hex())
    assert rc == 1 and "non-critical" in err
    # and a critical one with signature length 00 is refused too
    crit = bytes.fromhex(hexfile("1.6_ECS02/ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_PRECOMMAND_GBCS.HEX"))
    rc, _, err = run(capsys, *args, (crit + b"\x00").hex())
    assert rc == 1 and "critical" in err


def usage_error(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, err or out


def test_read_and_payment_mode_usage_errors(capsys):
    rc, err = usage_error(capsys, "payment-mode", "--port", "/dev/null", "debit")
    assert rc == 64 and "invalid choice" in err
    rc, err = usage_error(capsys, "payment-mode", "--port", "/dev/null", "credit",
                          "--disablement-threshold", "lots")
    assert rc == 64 and "--disablement-threshold" in err
    rc, err = usage_error(capsys, "read", "--port", "/dev/null", "--register", "time1")
    assert rc == 64 and "unrecognized" in err
    for verb, words in (("read", "Read Instantaneous Prepay Values"),
                        ("payment-mode", "Update Payment Mode")):
        rc, out = usage_error(capsys, verb, "--help")
        assert rc == 0 and words in out
