"""construct building blocks for GBCS codecs: fields that name themselves and their
byte offset when a message does not parse, DER-style lengths (NOTES 2.1), and the
plain-data views (dict trees, JSON, hex input) every codec shares."""

from construct import (
    ConstError, Construct, ConstructError, PrefixedArray, Renamed, Struct, Subconstruct,
)
from construct.core import BytesIOWithOffsets, stream_read, stream_write


class DecodeError(ValueError):
    """A message that does not follow the format: names the field and the byte offset
    (from the start of the whole message) where that field starts."""

    def __init__(self, offset, field, reason):
        self.offset = offset
        self.fields = [field] if field else []
        self.reason = reason
        super().__init__()

    @property
    def field(self):
        return "".join(f if f.startswith("[") or i == 0 else "." + f
                       for i, f in enumerate(self.fields))

    def __str__(self):
        where = f"{self.field} " if self.fields else ""
        return f"{where}at byte {self.offset}: {self.reason}"


# --- construct building blocks -------------------------------------------------

def _reason(e):
    """Plain words for a construct error (its own text carries a path header)."""
    text = str(e).splitlines()[-1] if str(e) else type(e).__name__
    if "stream read less than specified amount" in text:
        return "message is cut short here"
    return text


class _Located(Subconstruct):
    """Turns any parse failure of the field it wraps into a DecodeError that names
    the field and where it starts; nested fields add their names to the path."""

    def __init__(self, subcon, name):
        super().__init__(subcon)
        self.fieldname = name[:-len("_fixed")] if name.endswith("_fixed") else name

    def _parse(self, stream, context, path):
        start = stream.tell()
        try:
            return self.subcon._parsereport(stream, context, path)
        except DecodeError as e:
            e.fields.insert(0, self.fieldname)
            raise
        except ConstError:
            raise DecodeError(start, self.fieldname,
                              f"expected {self.subcon.value.hex(' ').upper()}") from None
        except ConstructError as e:
            raise DecodeError(start, self.fieldname, _reason(e)) from None


class _Item(Subconstruct):
    """An array element: adds its index to the path of a DecodeError."""

    def _parse(self, stream, context, path):
        try:
            return self.subcon._parsereport(stream, context, path)
        except DecodeError as e:
            e.fields.insert(0, f"[{context.get('_index')}]")
            raise


def items(countfield, subcon):
    """A count, then that many elements (GBZ components, DLMS sequences)."""
    return PrefixedArray(countfield, _Item(subcon))


def table(*fields):
    """A Struct whose named fields report their own offset and name on failure."""
    wrapped = []
    for f in fields:
        if isinstance(f, Renamed) and f.name:
            f = Renamed(_Located(f.subcon, f.name), newname=f.name)
        wrapped.append(f)
    return Struct(*wrapped)


class DerLength(Construct):
    """DER-style length: below 0x80 one byte, else 81 nn or 82 nn nn (NOTES 2.1).
    A-XDR quantities (array counts, octet-string lengths) use the same form."""

    def _parse(self, stream, context, path):
        first = stream_read(stream, 1, path)[0]
        if first < 0x80:
            return first
        if first == 0x81:
            return stream_read(stream, 1, path)[0]
        if first == 0x82:
            return int.from_bytes(stream_read(stream, 2, path), "big")
        raise DecodeError(stream.tell() - 1, None,
                          f"length byte {first:02X} is neither below 80, 81 nn nor 82 nn nn")

    def _build(self, obj, stream, context, path):
        enc = der_length(obj)
        stream_write(stream, enc, len(enc), path)
        return obj

    def _sizeof(self, context, path):
        raise ConstructError("DER length has a variable size", path=path)


def der_length(n):
    if n < 0:
        raise ValueError("length must not be negative")
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    if n < 0x10000:
        return b"\x82" + n.to_bytes(2, "big")
    raise ValueError(f"length {n} does not fit 82 nn nn")


def _build(con, obj, what):
    """con.build(obj), with construct's errors as ValueError in plain words."""
    try:
        return con.build(obj)
    except ConstructError as e:
        raise ValueError(f"cannot build {what}: {_reason(e)}") from None


def _stream(data, base=0):
    return BytesIOWithOffsets(bytes(data), None, base)


def _parse_exact(con, data, base=0, what="message"):
    """Parse `data` with `con` and insist every byte is used."""
    stream = _stream(data, base)
    try:
        obj = con.parse_stream(stream)
    except DecodeError:
        raise
    except ConstructError as e:
        raise DecodeError(stream.tell(), what, _reason(e)) from None
    end = stream.tell()
    if end != base + len(data):
        raise DecodeError(end, what, f"{base + len(data) - end} unexpected bytes after the end")
    return obj


def plain(obj):
    """A parsed Container as a plain dict/list tree, without construct's private keys
    and without fixed framing bytes (named `*_fixed` or `tag`)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()
                if not k.startswith("_") and not k.endswith("_fixed") and k != "tag"}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, str) and type(obj) is not str:   # construct EnumIntegerString
        return str(obj)
    return obj


def to_json(obj):
    """A decoded tree with bytes as upper-case hex, ready for json.dumps."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex().upper()
    if isinstance(obj, str) and type(obj) is not str:
        return str(obj)
    return obj


class HexError(DecodeError):
    """Input that is not hex text; offset counts characters of the input."""

    def __str__(self):
        return f"not hex: {self.reason}"


def parse_hex(text):
    """Bytes from hex text (whitespace and a leading 0x ignored). Raises DecodeError
    naming the character offset of the first non-hex character."""
    s = text.rstrip()
    skip = len(s) - len(s.lstrip())
    if s[skip:skip + 2].lower() == "0x":
        skip += 2
    clean = []
    for i, ch in enumerate(s):
        if i < skip:
            continue
        if ch in " \t\r\n":
            continue
        if ch not in "0123456789abcdefABCDEF":
            raise HexError(i, "hex", f"{ch!r} at character {i} is not a hex digit")
        clean.append(ch)
    if not clean:
        raise HexError(0, "hex", "no hex digits in the input")
    if len(clean) % 2:
        raise HexError(len(clean) // 2, "hex", f"odd number of hex digits ({len(clean)}): "
                                               f"byte {len(clean) // 2} is cut in half")
    return bytes.fromhex("".join(clean))
