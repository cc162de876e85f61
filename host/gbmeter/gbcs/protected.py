"""The encrypted personal data of the prepayment registers reads (SR 4.3: ECS19 /
GCS14, NOTES 7): where it sits in a Response, opening it (gbcs.crypto.unseal), and
the values it holds, under the names the meter's `registers` read-out uses.

- ECS19: the Access-Response data is a get_protected_attributes structure
  {protection parameters, octet-string 31 00000000 | ciphertext | tag}; the plaintext
  is a structure holding a structure of six double-longs in the order of the MMC's
  ReadInstantaneousPrepayValuesRsp.
- GCS14: the Prepayment component is encrypted (control bit 02); its plaintext is the
  Read Attributes Response payload. The Price component is plain.

    READS                       the use cases whose Responses carry sealed data
    sealed_parts(code, decoded) -> [(where, sealed bytes, cluster or None)]
    open_read(code, decoded, z, originator, counter, recipient) -> dict
        {"registers": {ec_balance, acc_debt, payment, time1, time2, balance},
         "values": the decoded plaintext(s), and on a GSME "currency",
         "trailing_digits"}; crypto.SealError when a sealed part does not open
"""

from gbmeter.gbcs import crypto
from gbmeter.gbcs.dlms import axdr_decode
from gbmeter.gbcs.fields import DecodeError
from gbmeter.gbcs.gbz import CLUSTER_PREPAYMENT, CLUSTER_PRICE, parse_attribute_records

READS = {0x002D: "ECS19", 0x0075: "GCS14"}

# ECS19: the six double-longs, in order, and the meter's names for them
ECS19_VALUES = (("EmergencyCreditBalance", "ec_balance"), ("AccumulatedDebtRegister", "acc_debt"),
                ("PaymentDebtRegister", "payment"), ("TimeDebtRegister1", "time1"),
                ("TimeDebtRegister2", "time2"), ("MeterBalance", "balance"))
# GCS14: Prepayment attributes and the meter's names for them
GCS14_VALUES = {"credit_remaining": "balance", "emergency_credit_remaining": "ec_balance",
                "accumulated_debt": "acc_debt", "debt_amount_1": "time1",
                "debt_amount_2": "time2", "debt_amount_3": "payment"}
REGISTERS = tuple(k for _, k in ECS19_VALUES)


def sealed_parts(message_code, decoded):
    """[(where, sealed bytes, cluster id or None)] of a decoded read Response content
    (codec.decode_content); [] for any other message or a Response whose read failed
    (no sealed data)."""
    uc = READS.get(message_code)
    out = []
    if uc == "GCS14" and decoded.get("format") == "gbz":
        for i, c in enumerate(decoded["components"]):
            if c.get("encrypted"):
                out.append((f"components[{i}]", c["ciphered"], c["cluster_id"]))
    elif uc == "ECS19" and decoded.get("format") == "dlms-access-response":
        data = decoded.get("data") or []
        node = data[0] if data else None
        if node and node["type"] == "structure" and len(node["value"]) == 2 \
                and node["value"][1]["type"] == "octet-string":
            out.append(("data[0].value[1]", node["value"][1]["value"], None))
    return out


def _ecs19_values(plain):
    try:
        tree = axdr_decode(plain)
        inner = tree["value"][0]["value"]
        if tree["type"] != "structure" or len(inner) != len(ECS19_VALUES) or \
                any(v["type"] != "double-long" for v in inner):
            raise ValueError
    except (DecodeError, ValueError, KeyError, IndexError, TypeError):
        raise DecodeError(0, "plaintext", "the decrypted ECS19 values are not a structure "
                                          "of six double-longs") from None
    values = {name: v["value"] for (name, _), v in zip(ECS19_VALUES, inner)}
    return values, {key: values[name] for name, key in ECS19_VALUES}


def open_read(message_code, decoded, z, originator, counter, recipient):
    """Open the sealed parts of a read Response (decoded content) with Z of the
    meter's and the Supplier's KA keys; originator is the meter, recipient the
    Supplier, counter the Response's. Raises crypto.SealError when a part does not
    open (nothing is decoded from it), DecodeError when there is nothing sealed."""
    parts = sealed_parts(message_code, decoded)
    if not parts:
        raise DecodeError(0, "content", "no encrypted part: not a successful "
                                        "Read Prepayment Registers Response")
    out = {"registers": {}, "values": {}}
    for where, sealed, cluster in parts:
        plain = crypto.unseal(z, originator, counter, recipient, sealed)
        if cluster is None:
            values, regs = _ecs19_values(plain)
            out["values"].update(values)
            out["registers"].update(regs)
            continue
        records = parse_attribute_records(cluster, plain)
        out["values"][where] = records
        if cluster == CLUSTER_PREPAYMENT:
            for rec in records:
                key = GCS14_VALUES.get(rec.get("name"))
                if key and rec["status"] == 0:
                    out["registers"][key] = rec["value"]
    if READS[message_code] == "GCS14":
        for c in decoded["components"]:
            if c["cluster_id"] == CLUSTER_PRICE and "read_attributes_response" in c:
                for rec in c["read_attributes_response"]["records"]:
                    if rec.get("name") == "currency" and rec["status"] == 0:
                        out["currency"] = rec["value"]
                    if rec.get("name") == "price_trailing_digit_and_price_tier" \
                            and rec["status"] == 0:
                        out["trailing_digits"] = rec["value"] >> 4
    return out
