"""Parse and Correlate: does a Signed Pre-Command say what the Service Request asked?

The pre-command is parsed back (codec.decode_content) and compared with what the
DCC's transform builds from the request: originator, target, counter, CRA, use case
(message code), then the content field by field, named in DUIS terms where one
exists (TimeDebtRegister1, GasDebtRecovery2/DebtRecoveryRatePeriod, ...) and by
its place in the content otherwise; for a reset, which register it resets. Time
fields (the ZCL issuer event id) are taken from the pre-command unless `now` is
given. With a key folder the Supplier signature is checked with the DS
certificate of the request's originator; without one it is "not checked" and does
not decide the result. A pre-command without a signature never correlates.
"""

from dataclasses import dataclass, field

from gbmeter.gbcs import codec, crypto
from gbmeter.dcc import duis
from gbmeter.dcc import precommand as tf
from gbmeter.dcc.anomaly import read_signed_precommand

CORRELATE_FAIL_EXIT = 3

REGISTER_BY_OBIS = {v: k for k, v in tf.CHARGE_OBIS.items()}
AMOUNT_TYPE_REGISTER = {0: "time1", 1: "time1", 2: "time2", 3: "time2", 4: "payment",
                        5: "payment"}

# GCS04: (register of the component, Change Debt field) -> DUIS Update Debt name
GBZ_DUIS_NAMES = {
    ("time1", "debt_amount"): "TimeDebtRegister1",
    ("time2", "debt_amount"): "TimeDebtRegister2",
    ("payment", "debt_amount"): "PaymentDebtRegister",
    ("time1", "recovery_amount"): "GasDebtRecovery1/DebtRecoveryRate",
    ("time2", "recovery_amount"): "GasDebtRecovery2/DebtRecoveryRate",
    ("time1", "recovery_frequency"): "GasDebtRecovery1/DebtRecoveryRatePeriod",
    ("time2", "recovery_frequency"): "GasDebtRecovery2/DebtRecoveryRatePeriod",
    ("payment", "recovery_balance_percentage"): "DebtRecoveryPerPayment",
}
# ECS07: (kind, OBIS, member, path inside the data item) -> DUIS Update Debt name
_T1, _T2, _PAY = (tf.CHARGE_OBIS[r] for r in ("time1", "time2", "payment"))
_RATE = ".value[2].value[0].value[1].value"      # charge_table[0].charge_per_unit
_SCALE = ".value[0].value[1].value"              # charge_per_unit_scaling.price
DLMS_DUIS_NAMES = {
    ("action", _T1, "update_total_amount_remaining", ".value"): "TimeDebtRegister1",
    ("action", _T2, "update_total_amount_remaining", ".value"): "TimeDebtRegister2",
    ("action", _PAY, "update_total_amount_remaining", ".value"): "PaymentDebtRegister",
    ("set", _PAY, "proportion", ".value"): "DebtRecoveryPerPayment",
    ("set", _T1, "unit_charge_passive", _RATE): "ElecDebtRecovery1/DebtRecoveryRate",
    ("set", _T2, "unit_charge_passive", _RATE): "ElecDebtRecovery2/DebtRecoveryRate",
    ("set", _T1, "unit_charge_passive", _SCALE): "ElecDebtRecovery1/DebtRecoveryRatePriceScale",
    ("set", _T2, "unit_charge_passive", _SCALE): "ElecDebtRecovery2/DebtRecoveryRatePriceScale",
    ("set", _T1, "period", ".value"): "ElecDebtRecovery1/DebtRecoveryRatePeriod",
    ("set", _T2, "period", ".value"): "ElecDebtRecovery2/DebtRecoveryRatePeriod",
}
# content fields a register difference already explains
REGISTER_FIELDS = ("obis", "object", "debt_amount_type", "debt_amount_type_name",
                   "debt_recovery_method")


@dataclass
class Correlation:
    correlates: bool
    signature: str                  # valid, invalid, not checked, absent, no key
    differences: list = field(default_factory=list)   # {field, sr, pre_command, text}
    notes: list = field(default_factory=list)
    request: dict = None
    pre_command: dict = None

    def as_json(self):
        return codec.to_json({
            "correlates": self.correlates, "signature": self.signature,
            "differences": self.differences, "notes": self.notes,
            "request": self.request, "pre_command": self.pre_command})

    def text(self):
        r = self.request
        head = (f"{r['use_case']} {r['request_id']}: " + ("correlates" if self.correlates
                                                          else "does NOT correlate"))
        sig = [d["text"] for d in self.differences if d["field"] == "signature"]
        lines = [head] + [f"  {t}" for t in sig or [f"signature: {self.signature}"]]
        lines += [f"  {d['text']}" for d in self.differences if d["field"] != "signature"]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _diff(out, name, sr, pc, text=None):
    out.append({"field": name, "sr": sr, "pre_command": pc,
                "text": text or f"{name}: SR says {_show(sr)}, pre-command has {_show(pc)}"})


def _show(v):
    if v is None:
        return "nothing"
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex().upper() or "(empty)"
    return str(v)


def flatten(obj, path="", out=None):
    """A decoded content tree as {path: leaf value}; lists also give path.count."""
    out = {} if out is None else out
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{path}.{k}" if path else k, out)
    elif isinstance(obj, list):
        out[f"{path}.count"] = len(obj)
        for i, v in enumerate(obj):
            flatten(v, f"{path}[{i}]", out)
    else:
        out[path] = obj
    return out


def reset_register(use_case, decoded):
    """The register a reset's decoded content resets, or None when it names none."""
    try:
        if use_case == "ECS07a":
            spec = decoded["specs"][0]
            return REGISTER_BY_OBIS.get(spec["obis"]) if len(decoded["specs"]) == 1 else None
        if use_case == "GCS04a":
            comp = decoded["components"][0]
            return AMOUNT_TYPE_REGISTER.get(comp["change_debt"]["debt_amount_type"])
    except (KeyError, IndexError, TypeError):
        return None
    return None


def _label(path, expected, request):
    """A DUIS name for a content path where one exists, else the path."""
    if request.service != "update_debt":
        return path
    head, _, rest = path.partition(".")
    if not head.endswith("]") or "[" not in head:
        return path
    name, idx = head[:-1].split("[")
    i = int(idx)
    if name == "components":
        comps = expected.get("components", [])
        if i < len(comps) and "change_debt" in comps[i]:
            reg = AMOUNT_TYPE_REGISTER.get(comps[i]["change_debt"]["debt_amount_type"])
            return GBZ_DUIS_NAMES.get((reg, rest.rpartition(".")[2]), path)
    if name == "data":
        specs = expected.get("specs", [])
        if i < len(specs):
            s = specs[i]
            key = (s["kind"], s["obis"], s.get("member"), "." + rest if rest else "")
            return DLMS_DUIS_NAMES.get(key, path)
    return path


def _time_seconds(decoded):
    """The issuer event id of the first ZCL component that has one."""
    for c in decoded.get("components", []):
        for payload in (c.get("change_debt"), c.get("credit_adjustment"),
                        c.get("change_payment_mode")):
            if payload and "issuer_event_id" in payload:
                return payload["issuer_event_id"]
    return None


def _content_differences(request, m, now, out, counter_differs):
    code = m["message_code"]
    try:
        actual = codec.decode_content(code, m["content"], m["content_offset"])
    except codec.DecodeError as e:
        _diff(out, "content", "what the DCC builds", "undecodable",
              f"content: does not decode ({e})")
        return
    seconds = tf.gbcs_seconds(now) if now is not None else _time_seconds(actual)
    expected_bytes = tf.content(request, seconds=seconds or 0)
    expected = codec.decode_content(code, expected_bytes)
    explained = set()
    if request.service == "reset_debt_register":
        want, got = request.fields["register"], reset_register(request.use_case, actual)
        if want != got:
            said = duis.REGISTER_TEXT.get(got, "no debt register")
            _diff(out, "register", duis.register_name(want), got,
                  f"register: SR says {duis.register_name(want)}, pre-command resets {said}")
            explained = set(REGISTER_FIELDS)
    fe, fa = flatten(expected), flatten(actual)
    for path in list(fe) + [p for p in fa if p not in fe]:
        a, b = fe.get(path), fa.get(path)
        if a == b:
            continue
        last = path.rpartition(".")[2]
        if last in explained:
            continue
        if last == "invoke_id" and counter_differs:
            continue    # follows the counter, already reported
        label = _label(path, expected, request)
        _diff(out, label, a, b)
    if not out and expected_bytes != m["content"]:
        at = next((i for i, (x, y) in enumerate(zip(expected_bytes, m["content"])) if x != y),
                  min(len(expected_bytes), len(m["content"])))
        _diff(out, "content", expected_bytes.hex().upper(), m["content"].hex().upper(),
              f"content: differs from what the DCC builds at content byte {at}")


def _signature(request, m, folder, out):
    if m["signature"] is None:
        _diff(out, "signature", "present", "absent",
              "signature: absent (a bare PRECOMMAND, not a Signed Pre-Command)")
        return "absent"
    if folder is None:
        return "not checked"
    eui = request.originator.hex()
    party = folder.parties.get(eui)
    if party is None or party.ds_pub is None:
        _diff(out, "signature", "Supplier signature", "no key",
              f"signature: no DS certificate for originator {eui.upper()} in {folder.path}")
        return "no key"
    row = codec.load_usecases().by_name(request.use_case)
    roles = row[4] if row else ()
    if roles and party.role not in roles:
        _diff(out, "signature", "Supplier", party.role_name,
              f"signature: originator {eui.upper()} is a {party.role_name}, "
              f"{request.use_case} may only come from a supplier")
        return "wrong role"
    if crypto.verify(party.ds_pub, m["signed_part"], m["signature"]):
        return "valid"
    _diff(out, "signature", "valid", "invalid",
          f"signature: does not verify with {eui.upper()}'s DS certificate")
    return "invalid"


def correlate(request, data, folder=None, now=None):
    """Correlate a Signed Pre-Command (bytes) with a ServiceRequest. folder: a
    keys.KeyFolder for the signature check, or None. now: the DCC's clock for the
    time fields, or None to take them from the pre-command."""
    data = bytes(data)
    m = read_signed_precommand(data, allow_command=True)
    out = []
    if m["originator"] != request.originator:
        _diff(out, "originator", request.originator.hex().upper(), m["originator"].hex().upper())
    if m["recipient"] != request.target:
        _diff(out, "target", request.target.hex().upper(), m["recipient"].hex().upper())
    if m["counter"] != request.counter:
        _diff(out, "counter", request.counter, m["counter"],
              f"counter: SR says {request.counter}, pre-command has {m['counter']}")
    if m["date_time"]:
        _diff(out, "date_time", None, m["date_time"])
    pc_use_case = codec.use_case_name(m["message_code"]) or "unknown"
    if m["message_code"] != request.message_code:
        _diff(out, "use case", f"{request.use_case} ({request.message_code:04X})",
              f"{pc_use_case} ({m['message_code']:04X})")
    else:
        _content_differences(request, m, now, out, m["counter"] != request.counter)
    sig = _signature(request, m, folder, out)
    notes = []
    if data[:1] == bytes([codec.TAG_GENERAL_CIPHERING]):
        notes.append("a COMMAND: its Signed Pre-Command was read, the MAC not checked")
    if now is None and _needs_time(request):
        notes.append("issuer event id taken from the pre-command (no --now given)")
    return Correlation(
        correlates=not out, signature=sig, differences=out, notes=notes,
        request=request.summary(),
        pre_command={"use_case": pc_use_case, "message_code": f"{m['message_code']:04X}",
                     "originator": m["originator"], "target": m["recipient"],
                     "counter": m["counter"], "content": m["content"]})


def _needs_time(request):
    return request.device == "gsme" and request.use_case != "GCS06"
