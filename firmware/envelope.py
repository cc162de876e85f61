# GBCS security at the meter: which Commands may run, and the signed Responses and
# Alerts the meter sends back (../shared/gbcs/NOTES.md sections 2.1-2.3).
#
# A Command is accepted only if every check passes, in this order; the first that
# fails names the alert the meter sends, and nothing executes, no counter moves:
#   1 MAC header and General-Signing APDU well formed, CRA 01, signed   8F1E
#   2 recipient is this meter                                            8F53
#   3 message code known for this device type (and this profile)        8F1E
#   4 originator is a trust anchor whose role may run that use case     8F30
#   5 originator counter above the last one accepted from that party   8F53
#   6 ACB MAC valid (Z = ECDH of the meter's and the ACB's KA keys)     8F53
#   7 Supplier signature valid (the anchor's DS key)                    8F3D
#   8 content matches the use case (the handler's own parse)            8F1E
# A non-critical Command (the reads, NOTES.md 7) carries no Supplier signature: only
# the ACB's MAC. Check 1 takes a critical Command signed and a non-critical one with
# signature length 00 (either the other way is 8F1E), and check 7 is skipped. Its
# Response is MAC'd by the meter for the originator (Z of the meter's and the
# originator's KA keys, so that party must have one: 8F53 at check 6 if not), and a
# read's personal data is encrypted for it (seal).
# After RUN_LIMIT rejected Commands in a row the meter adds 8F60 (unusual numbers of
# malformed, out-of-order or unexpected Commands) and starts counting again.
#
# Security keys live in the meter state, so they are committed like everything else:
#   keys     {"ds": private key hex, "ka": private key hex} made on the meter
#   anchors  {system title hex: {"role": 2|3|4, "ds": public hex, "ka": public hex}}
# Derived values are cached in RAM only: the ECDH secret per party and a comb table
# for each trusted signing key (p256.table). They are made between frames (warm, at
# boot and after provisioning), not in a Command: what is made then is kept, and made
# in the middle of the heap a Command's handler was using it would split the heap for
# good. When warm has not run, check() (and alerts.py) makes a missing one itself,
# as the fallback.
import gc
import struct

from micropython import const

import gbcsmac
import onecall
import p256
import usecases

A_FORMAT = const(0x8F1E)
A_AUTHORITY = const(0x8F30)
A_TRUST = const(0x8F3D)
A_AUTH = const(0x8F53)
A_RUN = const(0x8F60)
RUN_LIMIT = const(5)

_CRA_COMMAND = const(1)
_CRA_RESPONSE = const(2)
_CRA_ALERT = const(3)

# Why a Command was refused (Reject's reason, which the lasterror diagnostic shows):
# texts in errtext.py, loaded only to refuse one.
_W_MALFORMED = const(0)
_W_NOT_COMMAND = const(1)
_W_NOT_PROVISIONED = const(2)
_W_RECIPIENT = const(3)
_W_CODE = const(4)
_W_AUTHORITY = const(5)
_W_COUNTER = const(6)
_W_NO_ACB = const(7)
_W_MAC = const(8)
_W_SIGNATURE = const(9)
_W_SIGNED_READ = const(10)
_W_NO_KA = const(11)


class Reject(Exception):
    """A Command refused; args[0] is the alert code, args[1] the reason (for tests)."""


def parse_apdu(mv):
    """Fields of a General-Signing APDU that fills mv exactly:
    (cra, counter, originator, recipient, message code, content offset, content end,
    signature offset or -1). Offsets are into mv; ValueError if malformed."""
    n = len(mv)
    if n < 33 or mv[0] != 0xDF or mv[1] != 0x09 or mv[11] != 8 or mv[20] != 8:
        raise ValueError
    cra = mv[2]
    counter = struct.unpack_from(">Q", mv, 3)[0]
    o = 29
    if mv[o] == 0x0C:
        o += 13
    elif mv[o] != 0:
        raise ValueError
    else:
        o += 1
    if o + 3 > n or mv[o] != 2:
        raise ValueError
    code = (mv[o + 1] << 8) | mv[o + 2]
    end, c0 = gbcsmac.der_len_at(mv, o + 3, n)
    end += c0
    if end >= n:
        raise ValueError
    if mv[end] == 0x40 and end + 65 == n:
        return cra, counter, mv[12:20], mv[21:29], code, c0, end, end + 1
    if mv[end] == 0 and end + 1 == n:
        return cra, counter, mv[12:20], mv[21:29], code, c0, end, -1
    raise ValueError


def build_apdu(cra, counter, originator, recipient, code, content, sign_key=None,
               when=None):
    """A General-Signing APDU, with the date-time field 0C + `when` (a 12-byte COSEM
    date-time) if given, else 00; signed (40 + r||s over APDU[1:] up to the end of
    the content) when sign_key is given, else signature length 00."""
    head = struct.pack(">BBBQB", 0xDF, 0x09, cra, counter, 8)
    body = (head + bytes(originator) + b"\x08" + bytes(recipient)
            + (b"\x0c" + when if when else b"\x00") + b"\x02"
            + struct.pack(">H", code) + gbcsmac.der_len(len(content)) + bytes(content))
    if sign_key is None:
        return body + b"\x00"
    return body + b"\x40" + p256.sign(sign_key, memoryview(body)[1:])


class Security:
    """RAM caches over the keys in the meter state, and the run of rejected Commands."""

    def __init__(self):
        self.tables = {}   # system title hex -> p256.Table of its DS key
        self.z = {}        # system title hex -> ECDH secret with the meter's KA key
        self.bad_run = 0

    def forget(self):
        self.tables = {}
        self.z = {}

    def warm(self, st):
        """Make what the caches lack for the anchors in st: the ECDH secrets with the
        ACB (the MAC on Commands) and with the Supplier (the MAC on non-critical
        Alerts), and a comb table for each anchor whose role may originate a use case
        of this device. check() and alerts.py make anything still missing
        themselves."""
        if "keys" not in st:
            return
        for role in (usecases.ACB, usecases.SUPPLIER):
            who = _lowest(st, role)
            if who is not None and "ka" in st["anchors"][who]:
                self._z(st, who)
        roles = ()
        for row in usecases.USE_CASES:
            if row[2] == st["device"]:
                roles += row[4]
        for who, a in st["anchors"].items():
            if a["role"] in roles and "ds" in a and who not in self.tables:
                gc.collect()
                self.tables[who] = p256.table(bytes.fromhex(a["ds"]))

    def _z(self, st, who):
        z = self.z.get(who)
        if z is None:
            z = p256.ecdh(bytes.fromhex(st["keys"]["ka"]),
                          bytes.fromhex(st["anchors"][who]["ka"]))
            self.z[who] = z
        return z

    def check(self, st, data, supports):
        """Run checks 1-7 on a COMMAND (MAC-headed bytes). Returns (use-case row,
        originator hex, counter, content memoryview); raises Reject.
        supports(row) says whether this meter's profile knows the use case."""
        mv = memoryview(data)
        try:
            o, n = gbcsmac.parse_header(mv)
            apdu = mv[o:o + n]
            cra, counter, orig, recip, code, c0, c1, sig = parse_apdu(apdu)
        except ValueError:
            raise Reject(A_FORMAT, _why(_W_MALFORMED))
        row = usecases.find(code)
        # signed if critical (or unknown: refused below), not signed if not critical
        if cra != _CRA_COMMAND or (sig < 0) == (row is None or row[3]):
            raise Reject(A_FORMAT, _why(_W_NOT_COMMAND if sig < 0 or cra != _CRA_COMMAND
                                        else _W_SIGNED_READ))
        if "keys" not in st:
            raise Reject(A_AUTH, _why(_W_NOT_PROVISIONED))
        if bytes(recip).hex() != st["id"]:
            raise Reject(A_AUTH, _why(_W_RECIPIENT))
        if row is None or row[2] != st["device"] or not supports(row):
            raise Reject(A_FORMAT, _why(_W_CODE, code))
        who = bytes(orig).hex()
        anchor = st["anchors"].get(who)
        if anchor is None or anchor["role"] not in row[4]:
            raise Reject(A_AUTHORITY, _why(_W_AUTHORITY, who, row[1]))
        if counter <= st["counters"].get(who, 0):
            raise Reject(A_AUTH, _why(_W_COUNTER, counter))
        acb = _lowest(st, usecases.ACB)
        if acb is None:
            raise Reject(A_AUTH, _why(_W_NO_ACB))
        key = gbcsmac.mac_key(self._z(st, acb), orig, cra, counter, recip)
        if gbcsmac.tag(key, orig, apdu) != bytes(mv[o + n:]):
            raise Reject(A_AUTH, _why(_W_MAC))
        if sig < 0:
            if "ka" not in anchor:   # its Response could not be MAC'd for it
                raise Reject(A_AUTH, _why(_W_NO_KA, who))
            return row, who, counter, apdu[c0:c1]
        t = self.tables.get(who)
        if t is None:
            t = self.tables[who] = p256.table(bytes.fromhex(anchor["ds"]))
        if not p256.verify(t, apdu[1:c1], apdu[sig:sig + 64]):
            raise Reject(A_TRUST, _why(_W_SIGNATURE))
        return row, who, counter, apdu[c0:c1]

    def response(self, st, who, counter, code, content):
        """The Response to a Command from `who` with `counter`: signed for a critical
        use case, MAC'd for `who` for a non-critical one; the date-time field carries
        the meter clock where RTDS has it (usecases.DATED)."""
        row = usecases.find(code)
        when = usecases.DATED.get(row[1])
        if when is not None:
            when = onecall.load("alerts").cosem_datetime(st["clock"])[:11] + bytes((when,))
        apdu = build_apdu(_CRA_RESPONSE, counter, bytes.fromhex(st["id"]), bytes.fromhex(who),
                          code, content, row[3] and bytes.fromhex(st["keys"]["ds"]) or None,
                          when)
        return apdu if row[3] else gbcsmac.wrap(self._z(st, who), apdu)

    def seal(self, st, who, counter, plain):
        """A read's personal data encrypted for `who`, whose Command had `counter`
        (seal.py, loaded for the call, with Z of the meter's and its KA keys)."""
        return onecall.load("seal").seal(self._z(st, who), bytes.fromhex(st["id"]), counter,
                                         bytes.fromhex(who), plain)

    # The meter's own Alerts are made by alerts.py, loaded for the call (_alerts).
    def critical_alert(self, st, code):
        """A signed critical Alert (message code 1000) to the Supplier; uses up one
        alert counter value (st["alert_ctr"]), which the caller commits. A meter not
        yet provisioned has no key to sign with and sends it unsigned."""
        return _alerts().critical(self, st, code)

    def non_critical_alert(self, st, code):
        """A MAC'd non-critical Alert (message code 1001) for the Supplier; uses up
        one alert counter value too. Either category's content is the device's own:
        GBZ on a GSME, a DLMS data-notification on an ESME (alerts.py)."""
        return _alerts().non_critical(self, st, code)


def _why(i, *args):
    # Refusal reason i (errtext.ENVELOPE), formatted with args.
    return onecall.load("errtext").text("ENVELOPE", i, args)


def _lowest(st, role):
    # The anchor of this role with the lowest system title, or None.
    best = None
    for who, a in st.get("anchors", {}).items():
        if a["role"] == role and (best is None or who < best):
            best = who
    return best


def _alerts():
    # Only a refused Command or a diagnostic that raises alerts needs alerts.py: it is
    # loaded for the call and dropped after it.
    return onecall.load("alerts")
