"""The DCC's packet inspection (anomaly detection's first half): the value limits of
the adt.json configuration applied to a Signed Pre-Command's content, per use case.
GCS04a (a reset: amount 0, absolute type), GCS04 and ECS07 (Update Debt: the same
limits on both fuels) are inspected; the other use cases count towards volume
thresholds only (gbmeter.dcc.anomaly)."""

from gbmeter.gbcs import codec

ABSOLUTE_TYPES = (0, 2, 4)
ZCL_FREQUENCIES = (0, 1)


def _change_debts(content, base):
    """The Change Debt payloads of GBZ content, or raise _Finding."""
    try:
        gbz = codec.parse_gbz(content, base)
    except codec.DecodeError as e:
        raise _Finding(f"content does not decode: {e}") from None
    out = []
    for i, c in enumerate(gbz["components"], 1):
        if c["cluster_id"] != codec.CLUSTER_PREPAYMENT or c.get("command") != "change_debt":
            raise _Finding(f"component {i} is not a Prepayment Change Debt")
        out.append(c["change_debt"])
    return out


class _Finding(Exception):
    pass


def _inspect_gcs04a(content, base, limits):
    debts = _change_debts(content, base)
    if len(debts) != 1:
        raise _Finding(f"a reset carries one Change Debt, this one {len(debts)}")
    d = debts[0]
    reasons = []
    if d["debt_amount"] != 0:
        reasons.append(f"debt amount is {d['debt_amount']}, a reset must set 0")
    if d["debt_amount_type"] not in ABSOLUTE_TYPES:
        name = codec.DEBT_AMOUNT_TYPES.get(d["debt_amount_type"], "unknown")
        reasons.append(f"debt amount type is {d['debt_amount_type']} ({name}), a reset must "
                       "use an absolute type (0, 2 or 4)")
    return reasons


def _inspect_gcs04(content, base, limits):
    reasons = []
    for i, d in enumerate(_change_debts(content, base), 1):
        where = f"component {i}"      # numbered from 1, as send results number them
        if abs(d["debt_amount"]) > limits["max_debt_amount"]:
            reasons.append(f"{where}: debt amount {d['debt_amount']} is beyond the limit "
                           f"+/-{limits['max_debt_amount']}")
        if not 0 <= d["recovery_amount"] <= limits["max_recovery_amount"]:
            reasons.append(f"{where}: recovery amount {d['recovery_amount']} is outside "
                           f"0..{limits['max_recovery_amount']}")
        if d["recovery_balance_percentage"] > limits["max_recovery_balance_percentage"]:
            reasons.append(f"{where}: recovery balance percentage "
                           f"{d['recovery_balance_percentage']} is beyond the limit "
                           f"{limits['max_recovery_balance_percentage']}")
        if d["recovery_frequency"] not in ZCL_FREQUENCIES:
            reasons.append(f"{where}: recovery frequency {d['recovery_frequency']} is "
                           "neither hourly (0) nor daily (1)")
    return reasons


CHARGE_PERIODS = (3600, 86400)      # DLMS Charge period (s): hourly, daily


def _axdr_value(node, *path):
    # node["value"][path[0]]["value"][path[1]]... of an A-XDR tree (to_json form)
    for i in path:
        node = node["value"][i]
    return node["value"]


def _unit_charge_units(node):
    """A Charge unit_charge as 0.00001 GBP per period (per_unit * 10 ** (price scale
    + 5), the ESME's reading), or raise _Finding."""
    try:
        scale = _axdr_value(node, 0, 1)
        per_unit = _axdr_value(node, 2, 0, 1)
    except (KeyError, IndexError, TypeError):
        raise _Finding("a unit charge is not {scaler-unit, commodity, [charge]}") from None
    exp = scale + 5
    return per_unit * 10 ** exp if exp >= 0 else per_unit / 10 ** -exp


def _inspect_ecs07(content, base, limits):
    """ECS07 Manage Debt: the same value limits as GCS04, on the DLMS specifications:
    the amounts added (update_total_amount_remaining) as debt amounts, the time debts'
    unit charges (in 0.00001 GBP per period) as recovery amounts, the payment debt's
    proportion as the recovery balance percentage, and the periods hourly or daily."""
    try:
        req = codec.to_json(codec.parse_access_request(content, base))
    except codec.DecodeError as e:
        raise _Finding(f"content does not decode: {e}") from None
    reasons = []
    for i, (spec, node) in enumerate(zip(req["specs"], req["data"]), 1):
        where = f"specification {i} ({spec.get('object')} {spec.get('member')})"
        member, value = spec.get("member"), node.get("value")
        if spec.get("class_id") != codec.CLASS_CHARGE:
            raise _Finding(f"specification {i} is not a debt Charge")
        if member == "update_total_amount_remaining":
            if abs(value) > limits["max_debt_amount"]:
                reasons.append(f"{where}: debt amount {value} is beyond the limit "
                               f"+/-{limits['max_debt_amount']}")
        elif member == "unit_charge_passive":
            rate = _unit_charge_units(node)
            if not 0 <= rate <= limits["max_recovery_amount"]:
                reasons.append(f"{where}: recovery amount {rate:g} is outside "
                               f"0..{limits['max_recovery_amount']}")
        elif member == "proportion":
            if value > limits["max_recovery_balance_percentage"]:
                reasons.append(f"{where}: recovery balance percentage {value} is beyond "
                               f"the limit {limits['max_recovery_balance_percentage']}")
        elif member == "period":
            if value not in CHARGE_PERIODS:
                reasons.append(f"{where}: period {value} s is neither hourly (3600) nor "
                               "daily (86400)")
    return reasons


INSPECTORS = {"GCS04a": _inspect_gcs04a, "GCS04": _inspect_gcs04, "ECS07": _inspect_ecs07}


def inspect_packet(use_case, content, limits, base=0):
    """(inspection, reasons): inspection is "passed", "failed" or "not inspected"."""
    inspector = INSPECTORS.get(use_case)
    if inspector is None:
        return "not inspected", []
    try:
        reasons = inspector(content, base, limits)
    except _Finding as f:
        reasons = [str(f)]
    return ("failed" if reasons else "passed"), reasons
