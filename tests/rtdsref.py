"""The RTDS reference messages and DUIS requests of ../shared, described by what each
file is, for tests that must hold for every file present. More reference files keep
arriving: no test counts them; a test says which files it covers (all of them, or
those of the use cases the project implements) and checks each.

    messages()              every RTDS message as a Ref
    implemented(ref)        whether the project implements its use case (it is a row of
                            firmware/usecases.py, or an alert)
    sibling(ref, kind)      the file of another kind in the same case (COMMAND <->
                            RESPONSE <-> PRECOMMAND), or None
    duis_requests()         the DUIS Service Request files
    rtds_for(duis, kind)    the RTDS file made from a DUIS request, or None
    key(title, usage, private=False)   a ZAZ1 certificate / key path
"""

from dataclasses import dataclass
from pathlib import Path

from gbmeter import paths
from gbmeter.gbcs import codec

SHARED = paths.shared()
KINDS = ("PRECOMMAND", "COMMAND", "RESPONSE", "ALERT")
SUPPLIER = "90b3d51f30010000"
OTHER_SUPPLIER = "90b3d51f30030000"
ACB = "90b3d51f30000002"


def rtds_dir():
    return SHARED / "gbcs" / "rtds"


def keys_dir():
    return SHARED / "gbcs" / "keys"


def key(title, usage, private=False):
    return keys_dir() / f"{title}-{usage}.{'key' if private else 'pem'}"


@dataclass
class Ref:
    path: Path
    kind: str          # PRECOMMAND, COMMAND, RESPONSE or ALERT
    use_case: str      # ECS07, GCS14, GCA-DLMS ...
    outcome: str       # SUCCESS, ERROR or "" (alerts)
    data: bytes
    msg: dict          # codec.parse_message

    @property
    def name(self):
        return self.path.name


def _kind(name):
    for k in KINDS:
        if f"_{k}_" in name:
            return k
    return None


def messages():
    if SHARED is None:
        return []
    out = []
    for f in sorted(rtds_dir().glob("*/*.HEX")):
        kind = _kind(f.name)
        data = bytes.fromhex(f.read_text().strip())
        outcome = "SUCCESS" if "_SUCCESS_" in f.name else "ERROR" if "_ERROR_" in f.name else ""
        out.append(Ref(f, kind, f.name.split("_")[0], outcome, data, codec.parse_message(data)))
    return out


def implemented(ref):
    if ref.msg["message_code"] in (codec.MSG_ALERT_CRITICAL, codec.MSG_ALERT_NON_CRITICAL):
        return True
    return codec.load_usecases().find(ref.msg["message_code"]) is not None


def sibling(ref, kind):
    p = ref.path.with_name(ref.path.name.replace(f"_{ref.kind}_", f"_{kind}_"))
    if p == ref.path or not p.exists():
        return None
    return next(r for r in messages() if r.path == p)


def duis_requests():
    if SHARED is None:
        return []
    return sorted((SHARED / "gbcs" / "duis").glob("*.XML"))


def rtds_for(duis_file, kind):
    """rtds/<ref>_<uc>/<same name with _<kind>_GBCS.HEX>, or None."""
    uc, ref = duis_file.name.split("_")[:2]
    p = rtds_dir() / f"{ref}_{uc}" / duis_file.name.replace("_REQUEST_DUIS.XML", f"_{kind}_GBCS.HEX")
    return p if p.exists() else None
