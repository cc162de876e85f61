"""Provisioning a meter over its local port: identity, device profile, trust anchors
(the Supplier, ACB and Network Operator of the key folder, roles from their
certificates' OU) and key pairs made on the meter, whose public keys the host keeps."""

from gbmeter import profiles
from gbmeter.gbcs import crypto, keys, pki
from gbmeter.supplier.session import ACB, NETWORK_OPERATOR


def _anchor(party):
    a = {"role": party.role}
    for usage, pub in (("ds", party.ds_pub), ("ka", party.ka_pub)):
        if pub is not None:
            a[usage] = crypto.public_point(pub)[1:].hex()
    return a


def provision(s, link, device, meter_id, acb=None, network_operator=None, profile=None,
              new_keys=True, settings=None):
    """Provision the meter on `link` for Session `s`; returns the summary dict.
    `settings` ({name: value}) overrides the profile's settings."""
    meter_id = keys.normalise_title(meter_id)
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
    reply = link.diag("provision", timeout=30, **req)
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
           "saved": str(s.state / "meters" / f"{meter_id}.json"), "certificates": certs}
    return out
