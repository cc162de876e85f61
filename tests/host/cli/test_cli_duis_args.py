"""Careless addresses for the DUIS verbs: named plainly before anything starts."""

from gbmeter import cli


def test_bad_listen_addresses_are_named(capsys):
    for bad in ("abc", "127.0.0.1:99999", "127.0.0.1:", ":8079"):
        assert cli.main(["dcc", "serve", "--listen", bad, "--sim", "gsme"]) == 1
        err = capsys.readouterr().err
        assert f"--listen {bad!r}" in err and "65535" in err and "Traceback" not in err


def test_bad_listener_ports_are_usage_errors(capsys):
    for bad in ("-5", "65536", "x"):
        try:
            rc = cli.main(["duis", "listen", "--port", bad])
        except SystemExit as e:
            rc = e.code
        assert rc == 64
        assert "is not a port number from 0 to 65535" in capsys.readouterr().err
