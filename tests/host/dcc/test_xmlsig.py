"""DUIS XML security: the hardened parser, XMLDSig verify/sign against the real DCC
Boxed samples and XML-signing keys in ../shared/duis, and XSD validation against the
official DUIS 5.4 schema plus gbmeter's Reset Debt Register extension."""

import pytest
from lxml import etree
from signxml import XMLVerifier

from gbmeter.dcc import schema, srxml, xmlsig
from gbmeter.dcc.duis import NS

SUP = bytes.fromhex("90b3d51f30010000")
GSME = bytes.fromhex("00db1234567890a1")


@pytest.fixture(scope="module")
def trust(duis_dir):
    return xmlsig.TrustStore(duis_dir / "xmlsign")


@pytest.fixture(scope="module")
def schemas(duis_dir):
    return schema.load(duis_dir / "xsd")


def sample(duis_dir, name):
    return (duis_dir / "samples" / name).read_bytes()


# --- the real samples through the verifier ------------------------------------------------

@pytest.mark.parametrize("name,signer", [
    ("readfw-response.xml", "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1"),
    ("read-inventory-response-5.4.xml", "Z1-accessControlBroker-dSPXmlSign"),
])
def test_good_samples_verify(duis_dir, trust, schemas, name, signer):
    v = xmlsig.verify(sample(duis_dir, name), trust)
    assert v.signer.name == signer
    assert v.signer.eui == "90b3d51f30000002"      # the DCC
    assert v.root.tag == f"{{{NS}}}Response"
    assert v.root.find(f"{{{xmlsig.DS_NS}}}Signature") is None     # what was signed
    assert schemas.validate(xmlsig.parse(sample(duis_dir, name))) == "official"


@pytest.mark.parametrize("name,kind,words", [
    ("readfw-response-badsignature.xml", "signature", "does not verify"),
    ("readfw-response-no-signature.xml", "signature", "not signed"),
    ("ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS-signed.XML", "unknown-signer", "serial 1234567890"),
    ("ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS.XML", "signature", "not signed"),
    ("acknowledgement-error.xml", "signature", "not signed"),
])
def test_bad_samples_fail(duis_dir, trust, name, kind, words):
    with pytest.raises(xmlsig.XmlError, match=words) as e:
        xmlsig.verify(sample(duis_dir, name), trust)
    assert e.value.kind == kind


def test_the_xxe_sample_is_refused_and_reads_nothing(duis_dir, trust, tmp_path):
    data = sample(duis_dir, "duis-xxe.xml")
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    ours = data.replace(b"file:///etc/passwd", secret.as_uri().encode())
    for doc in (data, ours):
        for call in (lambda d: xmlsig.parse(d), lambda d: xmlsig.verify(d, trust)):
            with pytest.raises(xmlsig.XmlError) as e:
                call(doc)
            assert e.value.kind == "dtd"
            assert "SECRET" not in str(e.value) and "root:" not in str(e.value)


@pytest.mark.parametrize("doc,kind", [
    (b"not xml at all", "malformed"),
    (b"<sr:Request xmlns:sr='x'><unclosed></sr:Request>", "malformed"),
    (b"", "malformed"),
    (b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><r>&b;</r>',
     "dtd"),
    (b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>', "dtd"),
    (b'<?xml version="1.0"?><?xml-stylesheet href="x"?><r/>', "dtd"),
    (b"<r>" + b"x" * (xmlsig.MAX_BYTES + 1) + b"</r>", "size"),
])
def test_parser_refusals(doc, kind):
    with pytest.raises(xmlsig.XmlError) as e:
        xmlsig.parse(doc)
    assert e.value.kind == kind


# --- signing ------------------------------------------------------------------------------------

def _request(register="time1", counter=7):
    return srxml.reset_debt_xml(SUP, GSME, counter, register).encode()


def test_signature_has_the_notes_8_shape(trust):
    supplier = trust.signer("xml-sign-90B3D51F30010000-ds")
    root = etree.fromstring(xmlsig.sign(_request(), supplier))
    sig = root[-1]
    assert sig.tag == f"{{{xmlsig.DS_NS}}}Signature"
    q = xmlsig.DS
    assert sig.find("ds:SignedInfo/ds:CanonicalizationMethod", q).get("Algorithm") == xmlsig.EXC_C14N
    assert sig.find("ds:SignedInfo/ds:SignatureMethod", q).get("Algorithm") == xmlsig.ECDSA_SHA256
    refs = sig.findall("ds:SignedInfo/ds:Reference", q)
    assert len(refs) == 1 and refs[0].get("URI") == ""
    assert [t.get("Algorithm") for t in refs[0].findall("ds:Transforms/ds:Transform", q)] == [
        xmlsig.ENVELOPED]
    assert refs[0].find("ds:DigestMethod", q).get("Algorithm") == xmlsig.SHA256
    assert sig.find(".//ds:X509Certificate", q) is None
    assert sig.findtext(".//ds:X509SerialNumber", namespaces=q) == str(supplier.serial)
    assert sig.findtext(".//ds:X509IssuerName", namespaces=q) == "CN=Z1,OU=07"


def test_signature_verifies_the_way_other_xmldsig_tools_read_it(duis_dir, trust):
    """A request with namespaces it does not use (as DCC Boxed's requests have) signed
    here verifies with signxml's own defaults given only the certificate, so the
    digest is the XMLDSig default (inclusive c14n), as in the DCC Boxed samples."""
    data = sample(duis_dir, "ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS.XML")
    supplier = trust.signer("xml-sign-90B3D51F30010000-ds")
    signed = xmlsig.sign(data, supplier)
    XMLVerifier().verify(signed, x509_cert=supplier.cert)
    assert xmlsig.verify(signed, trust).signer.name == "xml-sign-90B3D51F30010000-ds"


def test_sign_replaces_a_placeholder_signature(duis_dir, trust):
    data = sample(duis_dir, "ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS-signed.XML")
    signed = xmlsig.sign(data, trust.signer("xml-sign-90B3D51F30010000-ds"))
    assert signed.count(b"Signature>") == 2 and b"ZGVmYXVsdA==" not in signed
    assert xmlsig.verify(signed, trust).signer.eui == "90b3d51f30010000"


def _signxml_signed(data, signer, c14n_transform):
    """A message signed by signxml (another XMLDSig implementation) in the NOTES 8
    shape; with c14n_transform the Reference also lists exclusive c14n."""
    from signxml import (CanonicalizationMethod, DigestAlgorithm, SignatureMethod,
                         SignatureReference, XMLSigner, methods)

    class Whole(XMLSigner):     # the one reference is URI="" (signxml writes "#id")
        def _get_c14n_inputs_from_references(self, doc_root, references):
            return [self.get_root(doc_root)], references

    xs = Whole(method=methods.enveloped, signature_algorithm=SignatureMethod.ECDSA_SHA256,
               digest_algorithm=DigestAlgorithm.SHA256,
               c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
    c14n = (CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0 if c14n_transform
            else CanonicalizationMethod.CANONICAL_XML_1_0)
    ki = etree.fromstring(
        f'<ds:KeyInfo xmlns:ds="{xmlsig.DS_NS}"><ds:X509Data><ds:X509IssuerSerial>'
        f"<ds:X509IssuerName>{signer.issuer}</ds:X509IssuerName><ds:X509SerialNumber>"
        f"{signer.serial}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data>"
        "</ds:KeyInfo>")
    return etree.tostring(xs.sign(etree.fromstring(data), key=signer.key, key_info=ki,
                                  reference_uri=[SignatureReference(URI="", c14n_method=c14n)],
                                  exclude_c14n_transform_element=not c14n_transform))


@pytest.mark.parametrize("c14n_transform", [False, True])
def test_signatures_made_by_signxml_verify_here(trust, c14n_transform):
    """The verifier is this module's own: what another implementation signs in the
    NOTES 8 shape verifies, and a change after signing is still caught."""
    supplier = trust.signer("xml-sign-90B3D51F30010000-ds")
    signed = _signxml_signed(_request(), supplier, c14n_transform)
    assert (b"xml-exc-c14n#\"/></ds:Transforms>" in signed) == c14n_transform
    v = xmlsig.verify(signed, trust)
    assert v.signer.eui == "90b3d51f30010000"
    assert v.root.findtext(f"{{{NS}}}Body/{{{NS}}}ResetDebtRegister/{{{NS}}}DebtRegister") == \
        "TimeDebtRegister1"
    with pytest.raises(xmlsig.XmlError, match="does not verify"):
        xmlsig.verify(signed.replace(b"TimeDebtRegister1", b"TimeDebtRegister2"), trust)


def test_the_signed_document_is_what_the_digest_covers(trust):
    """Comments are outside the digest (exclusive/inclusive c14n without comments):
    one slipped into a signed value after signing still verifies, but the document
    verify returns holds the whole signed value, not the part before the comment;
    text after the signature is kept where the enveloped transform leaves it."""
    supplier = trust.signer("xml-sign-90B3D51F30010000-ds")
    signed = xmlsig.sign(_request(counter=1234), supplier)
    commented = signed.replace(b":1234</sr:RequestID>", b":12<!-- x -->34</sr:RequestID>")
    assert etree.fromstring(commented).findtext(f"{{{NS}}}Header/{{{NS}}}RequestID").endswith(
        ":12")
    v = xmlsig.verify(commented, trust)
    assert v.root.findtext(f"{{{NS}}}Header/{{{NS}}}RequestID").endswith(":1234")
    assert not list(v.root.iter(etree.Comment))
    # signed with "\n\n" after the Body, the signature then put between the two
    # (as a signer inserting it before the root's closing text would): the same text
    two = xmlsig.sign(_request().replace(b"</sr:Body>\n", b"</sr:Body>\n\n"), supplier)
    tailed = two.replace(b"</sr:Body>\n\n<ds:Signature", b"</sr:Body>\n<ds:Signature").replace(
        b"</ds:Signature></sr:Request>", b"</ds:Signature>\n</sr:Request>")
    assert tailed != two and xmlsig.verify(tailed, trust).signer is supplier
    for changed in (tailed.replace(b"</ds:Signature>\n", b"</ds:Signature>\nx"),
                    signed.replace(b"</ds:Signature></sr:Request>",
                                   b"</ds:Signature>\n</sr:Request>")):
        with pytest.raises(xmlsig.XmlError, match="does not verify"):
            xmlsig.verify(changed, trust)


def test_sign_leaves_the_callers_element_alone(trust):
    root = xmlsig.parse(_request())
    before = etree.tostring(root)
    signed = xmlsig.sign(root, trust.signer("xml-sign-90B3D51F30010000-ds"))
    assert etree.tostring(root) == before
    assert xmlsig.verify(signed, trust).root.find(f"{{{xmlsig.DS_NS}}}Signature") is None


def _tamper_cases(signed):
    root = etree.fromstring(signed)
    sig = root[-1]
    moved = etree.fromstring(signed)
    moved.find(f"{{{NS}}}Body").append(moved[-1])          # signature wrapped inside the body
    twice = etree.fromstring(signed)
    twice.append(etree.fromstring(etree.tostring(sig)))
    other_alg = signed.replace(xmlsig.EXC_C14N.encode(),
                               b"http://www.w3.org/TR/2001/REC-xml-c14n-20010315")
    return {
        "body changed": signed.replace(b"TimeDebtRegister1", b"TimeDebtRegister2"),
        "counter changed": signed.replace(b":7</sr:RequestID>", b":8</sr:RequestID>"),
        "signature moved": etree.tostring(moved),
        "two signatures": etree.tostring(twice),
        "other c14n": other_alg,
        "signature value changed": signed.replace(b"<ds:SignatureValue>",
                                                  b"<ds:SignatureValue>AAAA"),
    }


@pytest.mark.parametrize("case", ["body changed", "counter changed", "signature moved",
                                  "two signatures", "other c14n", "signature value changed"])
def test_tampered_messages_fail(trust, case):
    signed = xmlsig.sign(_request(), trust.signer("xml-sign-90B3D51F30010000-ds"))
    assert xmlsig.verify(signed, trust).signer.eui == "90b3d51f30010000"
    with pytest.raises(xmlsig.XmlError) as e:
        xmlsig.verify(_tamper_cases(signed)[case], trust)
    assert e.value.kind == "signature"


def test_a_key_claiming_another_certificate_fails(trust):
    """Signed with the Network Operator's key but naming the Supplier's certificate."""
    sup = trust.signer("xml-sign-90B3D51F30010000-ds")
    no = trust.signer("xml-sign-90B3D51F30020000-ds")
    impostor = xmlsig.XmlCert(no.path, sup.cert, no.key)
    with pytest.raises(xmlsig.XmlError, match="does not verify"):
        xmlsig.verify(xmlsig.sign(_request(), impostor), trust)


def test_trust_store_lookup_is_by_issuer_and_serial(trust):
    dcc = trust.signer()
    assert dcc.name == xmlsig.DEFAULT_DCC_KEY and dcc.ou == "89"
    assert trust.lookup("OU=07, CN=Z1", dcc.serial) is dcc
    assert trust.lookup("CN=Z2,OU=07", dcc.serial) is None
    assert trust.lookup("CN=Z1,OU=07", dcc.serial + 1) is None
    assert trust.lookup("CN=Z1,OU=07", "not a number") is None


# --- schemas -------------------------------------------------------------------------------------

def test_reset_request_needs_the_extension(schemas):
    root = xmlsig.parse(_request())
    assert schemas.validate(root) == "extended"
    assert not schemas.official.validate(root)     # stock DUIS 5.4 refuses it
    assert schema.reset_names_agree()


def test_schema_refusals(schemas):
    two = _request().replace(b"<sr:DebtRegister>TimeDebtRegister1</sr:DebtRegister>",
                             b"<sr:DebtRegister>TimeDebtRegister1</sr:DebtRegister>"
                             b"<sr:DebtRegister>PaymentDebtRegister</sr:DebtRegister>")
    unknown = _request().replace(b"TimeDebtRegister1", b"TimeDebtRegister9")
    no_version = _request().replace(b' schemaVersion="5.4"', b"")
    update = srxml.update_debt_xml(SUP, GSME, 3, "gsme", 1, 2, 3, 4, {"rate": 1},
                                   {"rate": 2}).encode()
    assert schemas.validate(xmlsig.parse(update)) == "official"
    for bad in (two, unknown, no_version, update.replace(b"<sr:TimeDebtRegister1>1",
                                                         b"<sr:TimeDebtRegister1>x")):
        with pytest.raises(xmlsig.XmlError) as e:
            schemas.validate(xmlsig.parse(bad))
        assert e.value.kind == "schema" and "line" in str(e.value)


def test_signed_messages_stay_schema_valid(trust, schemas):
    signed = xmlsig.sign(_request(), trust.signer("xml-sign-90B3D51F30010000-ds"))
    assert schemas.validate(xmlsig.parse(signed)) == "extended"


def test_missing_schema_folder_is_named(tmp_path):
    from gbmeter.errors import UserError
    with pytest.raises(UserError, match="DUIS Schema V5.4.xsd"):
        schema.Schemas(tmp_path)
