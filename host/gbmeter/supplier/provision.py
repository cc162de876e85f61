"""Provisioning a meter over its local port: identity, device profile, trust anchors
(the Supplier, ACB and Network Operator of the key folder, roles from their
certificates' OU) and key pairs made on the meter, whose public keys the host keeps.

A board without an entropy source (ping says "entropy": false, e.g. the qemu_mps2
board) cannot make key pairs of its own; if board.json marks it as a test board it
takes a seed with the provisioning, which the host draws fresh from its own
os.urandom unless one is given (the same seed makes the same keys)."""

import os

from gbmeter import profiles
from gbmeter.board.link import MeterError
from gbmeter.errors import UserError
from gbmeter.gbcs import crypto, keys, pki
from gbmeter.supplier.session import ACB, NETWORK_OPERATOR


def _anchor(party):
    a = {"role": party.role}
    for usage, pub in (("ds", party.ds_pub), ("ka", party.ka_pub)):
        if pub is not None:
            a[usage] = crypto.public_point(pub)[1:].hex()
    return a


# What a factory-fresh meter holds (firmware/meterdiag.new_state): whatever differs is
# what a factory reset clears.
FACTORY = {"time1": 0, "time2": 0, "payment": 0, "balance": 0, "ec_balance": 0,
           "ec_limit": 500000, "ec_threshold": 100000, "ec_active": False, "acc_debt": 0,
           "mode": "credit", "clock": 0, "fault": None}
FACTORY_RECOVERY = {"time1_recovery": {"rate": 0, "freq": 1, "start": 0, "coll": 0},
                    "time2_recovery": {"rate": 0, "freq": 1, "start": 0, "coll": 0},
                    "payment_recovery": {"pct": 0}}


def clears(regs):
    """What a factory reset would clear on a meter with these registers: a list of
    "name value" texts, empty for a factory-fresh meter."""
    out = [f"{k} {regs[k]}" for k, v in FACTORY.items() if k in regs and regs[k] != v]
    for k, fresh in FACTORY_RECOVERY.items():
        cur = regs.get(k) or {}
        out += [f"{k.replace('_recovery', '')} recovery {f} "
                f"{('HOURLY', 'DAILY')[cur[f]] if f == 'freq' else cur[f]}"
                for f, v in fresh.items() if f in cur and cur[f] != v]
    return out


def check_identity(s, link, device, meter_id, factory_reset=False):
    """Refuse (UserError, nothing changed) a meter id that is the system title of an
    organisation in the key folder, and provisioning that would wipe a meter (another
    device or id than it has, on a meter that was provisioned or holds any state)
    unless factory_reset. Returns what the wipe clears (a list of texts; None when
    the meter keeps its identity and nothing is wiped)."""
    party = s.keys.parties.get(meter_id)
    if party is not None and party.role is not None:
        raise UserError(f"--id {meter_id} is the {party.role_name} {meter_id} of the key "
                        f"folder {s.keys.path}: give the meter's own system title")
    hello = link.ping()
    if (hello.get("device"), hello.get("id")) == (device, meter_id):
        return None
    try:
        regs = link.diag("registers")
    except MeterError:
        regs = {}   # diagnostics off: what it holds cannot be read
    cleared = clears(regs)
    if hello.get("provisioned"):
        cleared.insert(0, "its key pairs and trust anchors")
    if not cleared and regs:
        return []
    if not factory_reset:
        held = ", ".join(cleared) if cleared else "whatever it holds (diagnostics off: not read)"
        raise UserError(
            f"the meter on {link.port} is {hello.get('device', '?').upper()} {hello.get('id')}"
            f"{' (provisioned)' if hello.get('provisioned') else ''}: provisioning it as "
            f"{device.upper()} {meter_id} is a factory reset, which clears {held} "
            "(originator counters are kept). Give --factory-reset to do that; nothing "
            "was changed")
    return cleared


def provision(s, link, device, meter_id, acb=None, network_operator=None, profile=None,
              new_keys=True, settings=None, seed=None, factory_reset=False):
    """Provision the meter on `link` for Session `s`; returns the summary dict.
    `settings` ({name: value}) overrides the profile's settings; `seed` (hex, a test
    board only) is what the meter makes its key pairs from."""
    meter_id = keys.normalise_title(meter_id)
    cleared = check_identity(s, link, device, meter_id, factory_reset)
    if cleared and not new_keys:
        raise UserError("--keep-keys: a factory reset leaves the meter no key pairs to "
                        "keep; it makes new ones (leave out --keep-keys)")
    key_source = None
    if new_keys:
        hello = link.ping()
        if seed is None and hello.get("entropy") is False and hello.get("test_board"):
            seed = os.urandom(32).hex()
            key_source = "a seed from the host (the board has no entropy source; a test board)"
        elif seed is not None:
            if not hello.get("test_board"):
                raise UserError(f"--seed: the {hello.get('board')} board is not a test board; "
                                "it makes its key pairs from its own entropy source")
            key_source = "the seed given"
        elif hello.get("entropy") is False:
            raise UserError(f"the {hello.get('board')} board has no entropy source and is not "
                            "a test board: it cannot make key pairs (nothing was changed)")
        else:
            key_source = "the board's own entropy source"
    elif seed is not None:
        raise UserError("--seed makes new key pairs: not with --keep-keys")
    if profile or settings:
        # checked here too, so a typo is named before the meter is touched
        profiles.settings(profile or link.ping().get("profile") or "smets2", settings)
    anchors = {s.supplier.eui: _anchor(s.supplier)}
    acb = s.keys.pick(ACB, acb)
    anchors[acb.eui] = _anchor(acb)
    if network_operator or s.keys.by_role(NETWORK_OPERATOR):
        no = s.keys.pick(NETWORK_OPERATOR, network_operator)
        anchors[no.eui] = _anchor(no)
    req = {"device": device, "id": meter_id, "anchors": anchors, "new_keys": new_keys}
    if profile:
        req["profile"] = profile
    if settings:
        req["settings"] = settings
    if seed is not None:
        req["seed"] = seed
    if cleared is not None:
        req["factory_reset"] = True
    reply = link.diag("provision", timeout=max(30, link.timeout), **req)
    record = {"device": reply["device"], "ds": reply["ds"], "ka": reply["ka"],
              "supplier": s.supplier.eui, "acb": acb.eui, "profile": reply.get("profile")}
    s.save_meter(meter_id, record)
    certs = []
    if s.keys.has_root():
        for usage in ("ds", "ka"):
            certs.append(str(pki.issue_device_cert(s.keys, meter_id, bytes.fromhex("04" + reply[usage]), usage)))
    out = {"id": meter_id, "device": reply["device"], "profile": reply.get("profile"),
           "settings": reply.get("settings"), "ds_public_key": reply["ds"],
           "ka_public_key": reply["ka"], "trust_anchors": {k: keys.role_name(v["role"]) for k, v in anchors.items()},
           "saved": str(s.state / "meters" / f"{meter_id}.json"), "certificates": certs,
           "key_pairs_from": key_source, "factory_reset": cleared}
    return out
