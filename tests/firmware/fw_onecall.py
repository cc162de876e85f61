# The loader of modules a board holds only for one call.
import os
import sys

import onecall
from fwtest import firmware_dir, raises, tmpdir


def _module(folder, name, text):
    with open(folder + "/" + name + ".py", "w") as f:
        f.write(text)


def _on_path(name, modules):
    # A fresh folder first on sys.path, holding modules {name: source}.
    d = tmpdir(name)
    for m in modules:
        _module(d, m, modules[m])
    sys.path.insert(0, d)


def test_loaded_for_the_call_then_gone():
    _on_path("onecall", {
        "oc_codec": "X = 41\n",
        "oc_handler": "import oc_codec\n\ndef run():\n    return oc_codec.X + 1\n",
        "oc_broken": "import oc_codec\nraise ValueError('half made')\n"})
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


def _firmware_sources():
    folder = firmware_dir()
    return folder, [n for n in os.listdir(folder) if n.endswith(".py")]


def test_every_loaded_module_is_listed():
    # intern() loads what MODULES lists: a module loaded for a call but missing there
    # would have its names interned in the middle of the heap, in its first call.
    folder, names = _firmware_sources()
    asked = set()
    for name in names:
        with open(folder + "/" + name) as f:
            text = f.read()
        for part in text.split('onecall.load(')[1:]:
            if part[0] == '"':
                asked.add(part[1:part.index('"', 1)])
        if 'onecall.load("provision" if' in text:
            asked.add("provision")
    assert "gsme" in asked and "errtext" in asked and "provision" in asked
    assert asked <= set(onecall.MODULES), asked - set(onecall.MODULES)
    for m in onecall.MODULES:
        assert m + ".py" in names, m


def test_intern_loads_each_and_keeps_none():
    _on_path("intern", {
        "oc_count": "seen = []\n",
        "oc_a": "import oc_count\noc_count.seen.append('a')\n",
        "oc_b": "import oc_count\nimport oc_a\noc_count.seen.append('b')\n"})
    try:
        import oc_count
        onecall.intern(("oc_a", "oc_b"))
        if onecall._KEEP:
            assert oc_count.seen == []
        else:
            # oc_b's own import of oc_a finds it gone and loads it again: still
            # nothing is left behind
            assert oc_count.seen[0] == "a" and "b" in oc_count.seen
            assert "oc_a" not in sys.modules and "oc_b" not in sys.modules
    finally:
        sys.path.pop(0)
        sys.modules.pop("oc_count", None)
