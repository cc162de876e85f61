"""The host's view of device profiles: the firmware's table, --setting parsing, the
refusal of use cases a meter's profile does not know, and `gbmeter profiles`."""

import json

import pytest

from gbmeter import cli, profiles
from gbmeter.gbcs import codec
from gbmeter.errors import UserError

UC = codec.load_usecases()


def test_host_reads_the_firmware_table():
    assert profiles.names() == ["smets2", "smets2-pre", "smets1-secure"]
    assert profiles.settings("smets1-secure")["whole_pence"] is True
    with pytest.raises(UserError, match="unknown profile smets9"):
        profiles.settings("smets9")
    with pytest.raises(UserError, match="setting ec_amount takes limit or limit-less-debt"):
        profiles.settings("smets2", {"ec_amount": "everything"})


def test_parse_settings():
    got = profiles.parse_settings(["whole-pence=yes", "ec_amount=limit-less-debt",
                                   "balance_adjust=incremental-only"])
    assert got == {"whole_pence": True, "ec_amount": "limit-less-debt",
                   "balance_adjust": "incremental-only"}
    assert profiles.parse_settings(["whole_pence=off"]) == {"whole_pence": False}
    assert profiles.parse_settings(None) == {}
    for bad, words in (("whole_pence", "NAME=VALUE"), ("=3", "NAME=VALUE"),
                       ("whole_pence=perhaps", "true or false")):
        with pytest.raises(UserError, match=words):
            profiles.parse_settings([bad])
    # parsed, then named by the table: releases come with the profile
    for text, words in (("releases=none", "set by the profile"),
                        ("colour=red", "unknown setting colour")):
        with pytest.raises(UserError, match=words):
            profiles.settings("smets2", profiles.parse_settings([text]))


def test_check_known_refuses_what_the_profile_does_not_know():
    reset = UC.by_name("ECS07a")
    manage = UC.by_name("ECS07")
    pre = {"id": "00db1234567890a0", "profile": "smets2-pre",
           "settings": profiles.settings("smets2-pre")}
    with pytest.raises(UserError) as e:
        profiles.check_known(pre, reset)
    assert e.value.exit_code == 4
    assert "smets2-pre" in str(e.value) and "ECS07a" in str(e.value) and "8F1E" in str(e.value)
    profiles.check_known(pre, reset, force=True)            # negative testing
    profiles.check_known(pre, manage)                       # known since SMETS2
    profiles.check_known({"profile": "smets2", "settings": profiles.settings("smets2")}, reset)
    # a board that reports only its profile's name: the table decides
    with pytest.raises(UserError):
        profiles.check_known({"profile": "smets2-pre"}, reset)
    profiles.check_known({"profile": "smets1-secure"}, reset)
    # the settings the board reports win over its name (an overridden board)
    odd = {"profile": "smets2", "settings": dict(profiles.settings("smets2"), releases=[])}
    with pytest.raises(UserError):
        profiles.check_known(odd, UC.by_name("GCS04a"))


def test_text_follows_the_table_order():
    s = {"ec_amount": "limit", "releases": [], "whole_pence": True}
    assert profiles.text(s) == "releases none, whole_pence true, ec_amount limit"


def test_profiles_verb(capsys):
    assert cli.main(["profiles", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by = {p["name"]: p for p in out["profiles"]}
    assert "ECS07a" in by["smets2"]["use_cases"] and "GCS04a" in by["smets1-secure"]["use_cases"]
    assert not {"ECS07a", "GCS04a"} & set(by["smets2-pre"]["use_cases"])
    assert len(by["smets2-pre"]["use_cases"]) == len(UC.USE_CASES) - 2
    clauses = {s["name"]: s["clause"] for s in out["settings"]}
    assert clauses["whole_pence"] == "S1SR 18.16, 18.27" and clauses["ec_zero_limit"] == "S1SR 18.5"
    assert cli.main(["profiles"]) == 0
    plain = capsys.readouterr().out
    assert "smets1-secure:" in plain and "incremental-only" in plain


def test_cli_rejects_unknown_profile_names(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["sim", "--profile", "smets9"])
    assert e.value.code == 64      # a usage error (2 is a failed Command)
    assert "smets9" in capsys.readouterr().err


def test_a_reader_that_stops_early_is_not_an_error():
    # `gbmeter profiles --json | head -c 10`: the pipe closes under the CLI's output
    import os
    import subprocess
    import sys
    from pathlib import Path
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run([str(Path(sys.executable).parent / "gbmeter"), "profiles", "--json"],
                           stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(w)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
