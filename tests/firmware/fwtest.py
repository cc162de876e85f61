# Helpers for firmware unit tests, which run inside the MicroPython unix port.
import os


class SkipTest(Exception):
    pass


def shared_dir():
    """Path of ../shared, or skip the test with the reason."""
    d = os.getenv("GBMETER_SHARED")
    if not d:
        raise SkipTest("../shared is absent: reference data not available")
    return d


def firmware_dir():
    """The firmware folder: where onecall.py, like every firmware module, loads from."""
    import onecall
    return onecall.__file__.rsplit("/", 1)[0]


def rtds_hex(name):
    """Bytes of one RTDS file, e.g. rtds_hex('2.3_GCS04/GCS04_2.3_SUCCESS_COMMAND_GBCS.HEX')."""
    with open(shared_dir() + "/gbcs/rtds/" + name) as f:
        return bytes.fromhex(f.read().strip())


def raises(exc, fn, *args, **kw):
    """Assert that fn(*args) raises exc; returns the exception."""
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (fn, exc.__name__))


def tmpdir(name):
    """A fresh folder for this test under GBMETER_TMP (set by the pytest runner)."""
    base = os.getenv("GBMETER_TMP") or "/tmp"
    path = base + "/" + name
    rmtree(path)
    os.mkdir(path)
    return path


def rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for e in entries:
        p = path + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)
