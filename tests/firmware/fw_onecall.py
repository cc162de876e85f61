# The loader of modules a board holds only for one call.
import sys

import onecall
from fwtest import raises, tmpdir


def _module(folder, name, text):
    with open(folder + "/" + name + ".py", "w") as f:
        f.write(text)


def test_loaded_for_the_call_then_gone():
    d = tmpdir("onecall")
    _module(d, "oc_codec", "X = 41\n")
    _module(d, "oc_handler", "import oc_codec\n\ndef run():\n    return oc_codec.X + 1\n")
    _module(d, "oc_broken", "import oc_codec\nraise ValueError('half made')\n")
    sys.path.insert(0, d)
    try:
        m = onecall.load("oc_handler", ("oc_codec",))
        assert m.run() == 42       # usable while the caller holds it
        assert "oc_handler" not in sys.modules and "oc_codec" not in sys.modules
        m = onecall.load("oc_handler")   # without `also` its imports stay
        assert "oc_handler" not in sys.modules and "oc_codec" in sys.modules
        sys.modules.pop("oc_codec")
        # a failed import leaves no half-made module, nor what it imported
        raises(ValueError, onecall.load, "oc_broken", ("oc_codec",))
        assert "oc_broken" not in sys.modules and "oc_codec" not in sys.modules
        raises(ImportError, onecall.load, "oc_no_such_module")
    finally:
        sys.path.pop(0)
