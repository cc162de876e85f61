"""XML-signing test keys made for a GBCS key folder (gbmeter.dcc.xmlpki): the trust
store reads them, each certificate names its party's system title and role, and
what one signs verifies with it and with no other."""

import pytest

from gbmeter.dcc import srxml, xmlpki, xmlsig
from gbmeter.errors import UserError
from gbmeter.gbcs import keys as gkeys, pki


def test_xml_keys_for_a_fresh_pki(tmp_path):
    made = pki.init(tmp_path / "keys")
    folder = gkeys.KeyFolder(tmp_path / "keys")
    dcc = xmlpki.init(tmp_path / "xml", folder)
    assert dcc == f"dsp-xml-sign-{made['acb'].upper()}-ds"
    trust = xmlsig.TrustStore(tmp_path / "xml")
    by = {c.eui: c for c in trust.certs}
    assert set(by) == {made["supplier"], made["second supplier"], made["network operator"],
                       made["acb"]}
    assert {by[made[k]].ou for k in ("supplier", "second supplier", "network operator")} == \
        {xmlpki.OU_USER}
    assert by[made["acb"]].ou == xmlpki.OU_DCC
    assert all(c.key is not None for c in trust.certs)
    assert trust.signer(dcc).eui == made["acb"]
    # a User's signature verifies, and names its signer by issuer and serial
    sup = trust.signer(made["supplier"])
    xml = srxml.reset_debt_xml(bytes.fromhex(made["supplier"]), bytes.fromhex("00db1234567890a1"),
                               7, "time1").encode()
    signed = xmlsig.sign(xmlsig.parse(xml), sup)
    v = xmlsig.verify(xmlsig.parse(signed), trust)
    assert v.signer.eui == made["supplier"]
    # another store of the same shape does not know these certificates
    pki.init(tmp_path / "other")
    xmlpki.init(tmp_path / "otherxml", gkeys.KeyFolder(tmp_path / "other"))
    with pytest.raises(xmlsig.XmlError) as e:
        xmlsig.verify(xmlsig.parse(signed), xmlsig.TrustStore(tmp_path / "otherxml"))
    assert e.value.kind == "unknown-signer"


def test_no_acb_no_dcc_key(tmp_path):
    acb = pki.init(tmp_path / "keys")["acb"]
    for f in (tmp_path / "keys").iterdir():
        if f.name.startswith(acb):
            f.unlink()
    with pytest.raises(UserError) as e:
        xmlpki.init(tmp_path / "xml", gkeys.KeyFolder(tmp_path / "keys"))
    assert "no ACB" in str(e.value)
