# Error texts (errtext.py): one table per module that raises, loaded only to raise.
# Each table has exactly one text for each of its module's numbers, every text can be
# formatted as its raisers format it, and a raise leaves no texts behind in the heap.
import struct
import sys

import envelope
import errtext
import meter
from fwtest import firmware_dir, raises
from fw_vectors import access_request, change_debt, charge, gbz, ESME_ID, GSME_ID

# table -> (module whose source numbers its texts, prefix of those numbers)
TABLES = {"ENVELOPE": ("envelope", "_W_"), "GBZ": ("gbz", "_E_"), "GSME": ("gsme", "_E_"),
          "DLMS": ("dlms", "_E_"), "ESME": ("esme", "_E_")}


def _numbers(module, prefix):
    # The values of the module's `prefix...= const(n)` lines, read from its source.
    out = []
    with open(firmware_dir() + "/" + module + ".py") as f:
        for line in f:
            if line.startswith(prefix) and "= const(" in line:
                out.append(int(line.split("const(")[1].split(")")[0]))
    return out


def test_one_text_per_number():
    for table, (module, prefix) in TABLES.items():
        numbers = _numbers(module, prefix)
        fields = getattr(errtext, table).split("|")
        assert numbers == list(range(len(numbers))), (table, numbers)
        assert len(fields) == len(numbers), (table, len(fields), len(numbers))


def _format_error(device, name, content):
    st = meter.new_state(device, ESME_ID if device == "esme" else GSME_ID)
    return str(raises(meter.FormatError, meter.execute, st, name, content))


def test_texts_as_raised():
    # a codec's text, a handler's text with values, and the one with a literal %
    assert _format_error("gsme", "GCS04", b"\x00") == "not GBZ content"
    two = gbz([(0x0705, i, 2, change_debt(0, 0)) for i in range(2)])
    assert _format_error("gsme", "GCS04a", two) == "GCS04a takes exactly one component"
    too_much = access_request([(2, 113, charge(3), 13, b"\x12" + struct.pack(">H", 10001))])
    assert _format_error("esme", "ECS07", too_much) == "proportion above 100 %"
    assert _format_error("esme", "ECS07", b"\xd9") == "not a DLMS Access-Request"
    e = raises(envelope.Reject, envelope.Security().check, {}, b"\xdd\x00", None)
    assert e.args == (envelope.A_FORMAT, "malformed MAC header or General-Signing APDU")


def test_no_texts_held_after_a_raise():
    sys.modules.pop("errtext", None)   # this test module's own import
    _format_error("esme", "ECS07", b"\xd9")
    assert "errtext" not in sys.modules
    raises(KeyError, errtext.text, "NO_SUCH_TABLE", 0)
    raises(ValueError, errtext.text, "GBZ", 99)   # past the last field
