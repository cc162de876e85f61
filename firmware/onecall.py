# Modules a board loads for one call and drops after it: the handlers and their
# codecs, alerts, key generation, reading the store, booting, the diagnostics, the
# profile table. Between calls the heap holds none of their code. One loader, so that
# every such module is loaded, and let go, the same way.
import gc
import sys

# Every module load() is asked for (tests/firmware/fw_onecall.py keeps this true).
MODULES = ("appboot", "appdiag", "provision", "meterdiag", "meterset", "profiles", "storeload",
           "p256make", "alerts", "errtext", "gsme", "gbz", "esme", "dlms", "gsmepay",
           "esmepay", "seal")

# Under CPython (the host runs p256 from here) modules stay loaded: it has the heap,
# and it calls them by the hundred.
_KEEP = sys.implementation.name == "cpython"


def load(name, also=()):
    """Import module `name` (and with it the modules named in `also`, which it
    imports) for one call. They leave sys.modules at once, so their code is freed as
    soon as the caller drops the module it got; a failed import leaves no half-made
    module behind. A collection first puts the code into the holes the last call
    left, not across the free space."""
    if _KEEP:
        return __import__(name)
    gc.collect()
    try:
        return __import__(name)
    finally:
        sys.modules.pop(name, None)
        for m in also:
            sys.modules.pop(m, None)


def intern(names=MODULES):
    """Load each module at boot and drop it again: its names are interned now.
    MicroPython never frees an interned name, and the names a module brings the first
    time it loads go into new blocks that stay for good (a new pool of them doubles
    in size, 3.5K at the firmware's count). Made at boot they lie at the bottom of
    the heap; made in the first Command they would split the heap in two."""
    if _KEEP:
        return
    for name in names:
        load(name, names)
