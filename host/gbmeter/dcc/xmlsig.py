"""XML security for DUIS messages (../shared/gbcs/NOTES.md section 8): a hardened
parser, the XML-signing trust store, and enveloped XMLDSig signatures.

Parsing (parse): lxml with no DTD loading, no entity expansion, no network, no huge
trees; a document with a DOCTYPE, an entity reference or a processing instruction
is refused before anything in it is used, so an external-entity attack
(../shared/duis/samples/duis-xxe.xml) reads nothing. Bodies over max_bytes are
refused unread.

Signatures (sign / verify), as DCC Boxed and the User Systems make them:
  - enveloped, one ds:Signature as the last child of the root;
  - SignedInfo canonicalised with exclusive c14n (xml-exc-c14n#), ecdsa-sha256;
  - one Reference URI="" whose only transform is enveloped-signature, digest
    SHA-256. With no c14n transform listed, XMLDSig turns the node-set into octets
    with inclusive C14N 1.0, which is what the real DCC Boxed samples digest (an
    exclusive c14n transform after the enveloped one is read too, never made);
  - KeyInfo/X509Data/X509IssuerSerial names the certificate (no certificate
    inside); the receiver looks it up by serial and issuer in its trust store.
Certificate dates are not checked (NOTES 1: test certificates expire). Signing and
verifying are done here on lxml's c14n and cryptography's ECDSA (the signature value
is r || s, 32 bytes each): only this shape is made or accepted. The signed document
verify returns is parsed again from exactly the bytes the digest covered.

The trust store (TrustStore) is a folder of certificates (*.pem) and private keys
(*.key, DER or PEM PKCS#8; *.key.pem) in the naming of ../shared/duis/xmlsign:
a certificate's x500UniqueIdentifier is its party's system title and its OU the
XML-signing role (87 a User, 89 the DCC). A key is paired with the certificate
whose public key it matches.

Every refusal raises XmlError (a UserError) whose `kind` says which check failed:
"size", "malformed", "dtd", "signature", "unknown-signer".

Why one module of some 500 lines: the parser's refusals, the trust store and the
signature checks together are the one gate every DUIS message passes; reviewing
what it accepts means reading them side by side.
"""

import base64
import copy
import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                             encode_dss_signature)
from cryptography.x509.oid import NameOID
from lxml import etree

from gbmeter.errors import UserError

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DS = {"ds": DS_NS}
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

MAX_BYTES = 256 * 1024      # the largest DUIS message this service reads
DEFAULT_DCC_KEY = "dsp-xml-sign-90B3D51F30000002-ds"   # the key DCC Boxed's clients trust


class XmlError(UserError):
    """An XML message refused; kind: size, malformed, dtd, signature, unknown-signer."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


# --- parsing -------------------------------------------------------------------------

class _NothingOutside(etree.Resolver):
    """Defence in depth: whatever the parser would fetch (a DTD, an entity) is empty."""

    def resolve(self, url, pubid, context):
        return self.resolve_empty(context)


def _parser():
    p = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                        dtd_validation=False, huge_tree=False, collect_ids=False,
                        remove_blank_text=False)
    p.resolvers.add(_NothingOutside())
    return p


# a DOCTYPE in the prolog (after a BOM, the XML declaration, comments, PIs, spaces)
_DOCTYPE = re.compile(rb"^(?:\xef\xbb\xbf)?(?:\s|<\?.*?\?>|<!--.*?-->)*<!DOCTYPE", re.S)


def parse(data, max_bytes=MAX_BYTES):
    """The root element of an XML message (bytes), or XmlError. No DTD, no entity, no
    processing instruction; nothing outside the bytes is ever read."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) > max_bytes:
        raise XmlError("size", f"message of {len(data)} bytes is over the {max_bytes}-byte "
                               "limit")
    if _DOCTYPE.match(data):
        raise XmlError("dtd", "a DOCTYPE (DTD) is not allowed in a DUIS message")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as e:
        raise XmlError("malformed", f"not well-formed XML: {_first_line(e)}") from None
    except ValueError as e:
        raise XmlError("malformed", f"not XML: {e}") from None
    info = root.getroottree().docinfo
    if info.internalDTD is not None or info.externalDTD is not None or info.doctype:
        raise XmlError("dtd", "a DOCTYPE (DTD) is not allowed in a DUIS message")
    for node in root.iter(etree.Entity, etree.ProcessingInstruction):
        what = "entity reference" if isinstance(node, etree._Entity) else "processing instruction"
        raise XmlError("dtd", f"an {what} is not allowed in a DUIS message")
    for node in _siblings(root):
        if isinstance(node, etree._ProcessingInstruction):
            raise XmlError("dtd", "a processing instruction is not allowed in a DUIS message")
    return root


def _siblings(root):
    n = root.getprevious()
    while n is not None:
        yield n
        n = n.getprevious()
    n = root.getnext()
    while n is not None:
        yield n
        n = n.getnext()


def _first_line(e):
    msg = str(e).splitlines()[0] if str(e) else "syntax error"
    return msg


def tostring(root):
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --- the trust store ---------------------------------------------------------------------

def _unique_identifier(cert):
    for attr in cert.subject:
        if attr.oid == NameOID.X500_UNIQUE_IDENTIFIER:
            v = bytes(attr.value)
            return (v[1:] if len(v) == 9 else v).hex()
    return None


def _ou(cert):
    for attr in cert.subject:
        if attr.oid == NameOID.ORGANIZATIONAL_UNIT_NAME:
            return attr.value
    return None


def name_pairs(text):
    """'CN=Z1,OU=07' or 'OU=07, CN=Z1' -> {('CN', 'Z1'), ('OU', '07')} (order-free)."""
    out = set()
    for part in str(text).split(","):
        if "=" not in part:
            return None
        k, _, v = part.partition("=")
        out.add((k.strip().upper(), v.strip()))
    return out


@dataclass
class XmlCert:
    path: Path
    cert: x509.Certificate
    key: object = None              # the private key, when the folder holds it

    # read from the certificate once (every message checks them)
    @cached_property
    def eui(self):
        """The party's system title (16 lowercase hex digits) or None."""
        return _unique_identifier(self.cert)

    @cached_property
    def ou(self):
        return _ou(self.cert)

    @cached_property
    def serial(self):
        return self.cert.serial_number

    @cached_property
    def issuer(self):
        return self.cert.issuer.rfc4514_string()

    @cached_property
    def issuer_pairs(self):
        return name_pairs(self.issuer)

    @cached_property
    def public_key(self):
        return self.cert.public_key()

    @property
    def name(self):
        n = self.path.name
        return n[:-4] if n.endswith(".pem") else n


def _load_key(path):
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, None)
        return serialization.load_der_private_key(data, None)
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: not a PKCS#8 private key ({e})") from None


def _pub_bytes(key):
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


class TrustStore:
    """The XML-signing certificates and keys of a folder (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise UserError(f"XML-signing key folder {self.path} does not exist")
        self.certs = []
        keys = []
        for f in sorted(self.path.iterdir()):
            if f.name.endswith(".key") or f.name.endswith(".key.pem"):
                keys.append((f, _load_key(f)))
            elif f.suffix == ".pem":
                try:
                    cert = x509.load_pem_x509_certificate(f.read_bytes())
                except ValueError as e:
                    raise UserError(f"{f}: not a PEM certificate ({e})") from None
                self.certs.append(XmlCert(f, cert))
        by_pub = {}
        for c in self.certs:
            pk = c.cert.public_key()
            if isinstance(pk, ec.EllipticCurvePublicKey):
                by_pub.setdefault(_pub_bytes(pk), []).append(c)
        for f, key in keys:
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                continue
            for c in by_pub.get(_pub_bytes(key.public_key()), []):
                c.key = key
        if not self.certs:
            raise UserError(f"no certificate (*.pem) in XML-signing key folder {self.path}")

    def lookup(self, issuer, serial):
        """The certificate named by X509IssuerName / X509SerialNumber text, or None."""
        try:
            serial = int(str(serial).strip())
        except ValueError:
            return None
        want = name_pairs(issuer)
        for c in self.certs:
            if c.serial == serial and want == c.issuer_pairs:
                return c
        return None

    def signer(self, name=None):
        """The certificate (with its key) to sign with: by file name (without .pem),
        or by system title (the one with a key); default DEFAULT_DCC_KEY."""
        name = name or DEFAULT_DCC_KEY
        wanted = str(name).lower().replace("-", "")
        for c in self.certs:
            if c.name == name or (c.key is not None and c.eui == wanted):
                if c.key is None:
                    raise UserError(f"no private key for {c.path} in {self.path}")
                return c
        raise UserError(f"no XML-signing certificate {name} in {self.path}")

    def by_eui(self, eui):
        return [c for c in self.certs if c.eui == eui]


# --- signing ------------------------------------------------------------------------------
#
# Own XMLDSig on lxml's c14n and cryptography's ECDSA (signxml took several times as
# long per message; it stays the cross-check in the tests). Exactly the signatures of
# NOTES 8 are made and read: nothing else is supported, so nothing else can slip in.

EC_NS = EXC_C14N        # InclusiveNamespaces lives in the exclusive c14n namespace


def _ds(parent, name, **attrs):
    return etree.SubElement(parent, f"{{{DS_NS}}}{name}", **attrs)


def _c14n(node, exclusive, prefixes=None):
    return etree.tostring(node, method="c14n", exclusive=exclusive, with_comments=False,
                          inclusive_ns_prefixes=prefixes or None)


def _detach(el):
    """Take `el` out of its parent, keeping the text after it (the enveloped-signature
    transform removes the element, not its neighbours' text)."""
    parent = el.getparent()
    if el.tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
    parent.remove(el)


def _document_digest(root, exclusive=False, prefixes=None):
    """SHA-256 of the document (`root` holds no signature any more) as the one
    Reference URI="" digests it: inclusive C14N 1.0 when no c14n transform is
    listed (the XMLDSig default, as DCC Boxed signs), exclusive when one is."""
    data = _c14n(root, exclusive, prefixes)
    return hashlib.sha256(data).digest(), data


def _raw_signature(der, key):
    r, s = decode_dss_signature(der)
    n = (key.curve.key_size + 7) // 8
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def sign(root, signer):
    """Bytes of `root` (an lxml element, or XML bytes) with an enveloped signature by
    `signer` (an XmlCert with its key) appended as the root's last child; a signature
    already there is replaced. The caller's element is not changed."""
    return tostring(signed_tree(root, signer))


def signed_tree(root, signer, in_place=False):
    """The signed document as an lxml root (see sign): a copy of `root`, or `root`
    itself with in_place (a document made only to be signed and sent)."""
    if isinstance(root, (bytes, str)):
        root = parse(root)
    elif root.getparent() is not None:
        root = parse(etree.tostring(root))
    elif not in_place:
        root = copy.deepcopy(root)
    if signer.key is None:
        raise UserError(f"no private key for {signer.path}")
    for old in root.findall(f"{{{DS_NS}}}Signature"):
        _detach(old)
    digest, _ = _document_digest(root)
    sig = etree.SubElement(root, f"{{{DS_NS}}}Signature", nsmap={"ds": DS_NS})
    si = _ds(sig, "SignedInfo")
    _ds(si, "CanonicalizationMethod", Algorithm=EXC_C14N)
    _ds(si, "SignatureMethod", Algorithm=ECDSA_SHA256)
    ref = _ds(si, "Reference", URI="")
    _ds(_ds(ref, "Transforms"), "Transform", Algorithm=ENVELOPED)
    _ds(ref, "DigestMethod", Algorithm=SHA256)
    _ds(ref, "DigestValue").text = b64(digest)
    der = signer.key.sign(_c14n(si, True), ec.ECDSA(hashes.SHA256()))
    _ds(sig, "SignatureValue").text = b64(_raw_signature(der, signer.key))
    data = _ds(_ds(sig, "KeyInfo"), "X509Data")
    iss = _ds(data, "X509IssuerSerial")
    _ds(iss, "X509IssuerName").text = signer.issuer
    _ds(iss, "X509SerialNumber").text = str(signer.serial)
    return root


# --- verifying ------------------------------------------------------------------------------

@dataclass
class Verified:
    root: object            # the signed document (the Signature removed): use only this
    signer: XmlCert


def _only(parent, path, what):
    found = parent.findall(path, DS)
    if len(found) != 1:
        raise XmlError("signature", f"the signature has {len(found)} {what}, expected one")
    return found[0]


def _prefixes(method):
    """The InclusiveNamespaces PrefixList of an exclusive c14n method element."""
    inc = method.find(f"{{{EC_NS}}}InclusiveNamespaces")
    if inc is None:
        return None
    return [p for p in (inc.get("PrefixList") or "").split() if p]


@dataclass
class _Shape:
    issuer: str
    serial: str
    signed_info: object
    c14n_prefixes: list
    digest_exclusive: bool
    digest_prefixes: list
    digest_value: str
    signature_value: str


def _check_shape(sig):
    """The signature is the one NOTES 8 describes, nothing else."""
    si = _only(sig, "ds:SignedInfo", "SignedInfo")
    cm = _only(si, "ds:CanonicalizationMethod", "CanonicalizationMethod")
    c14n = cm.get("Algorithm")
    if c14n != EXC_C14N:
        raise XmlError("signature", f"canonicalisation {c14n} is not exclusive c14n ({EXC_C14N})")
    alg = _only(si, "ds:SignatureMethod", "SignatureMethod").get("Algorithm")
    if alg != ECDSA_SHA256:
        raise XmlError("signature", f"signature method {alg} is not ecdsa-sha256")
    ref = _only(si, "ds:Reference", "references")
    if ref.get("URI") != "":
        raise XmlError("signature", f"the reference is URI={ref.get('URI')!r}, expected the whole "
                                    'document (URI="")')
    steps = ref.findall("ds:Transforms/ds:Transform", DS)
    transforms = [t.get("Algorithm") for t in steps]
    if transforms not in ([ENVELOPED], [ENVELOPED, EXC_C14N]):
        raise XmlError("signature", f"transforms {transforms} are not the enveloped-signature one "
                                    "(optionally followed by exclusive c14n)")
    digest = _only(ref, "ds:DigestMethod", "DigestMethod").get("Algorithm")
    if digest != SHA256:
        raise XmlError("signature", f"digest {digest} is not SHA-256")
    iss = _only(sig, "ds:KeyInfo/ds:X509Data/ds:X509IssuerSerial", "X509IssuerSerial")
    name = iss.find("ds:X509IssuerName", DS)
    serial = iss.find("ds:X509SerialNumber", DS)
    if name is None or serial is None or not (name.text or "").strip():
        raise XmlError("signature", "X509IssuerSerial needs X509IssuerName and X509SerialNumber")
    return _Shape(name.text.strip(), (serial.text or "").strip(), si, _prefixes(cm),
                  len(transforms) == 2, _prefixes(steps[-1]) if len(steps) == 2 else None,
                  _only(ref, "ds:DigestValue", "DigestValue").text,
                  _only(sig, "ds:SignatureValue", "SignatureValue").text)


def verify(data, trust, max_bytes=MAX_BYTES):
    """Verify a signed DUIS message (bytes or a parsed root, which is left as it is).
    Returns Verified with the signed document (parsed again from exactly the bytes the
    digest covers: a comment or anything else outside the digest is not in it) and
    the signer's certificate; raises XmlError."""
    root = parse(data, max_bytes) if isinstance(data, (bytes, str)) else data
    everywhere = root.findall(f".//{{{DS_NS}}}Signature")
    if not everywhere:
        raise XmlError("signature", "the message is not signed (no ds:Signature)")
    if len(everywhere) != 1 or everywhere[0].getparent() is not root:
        raise XmlError("signature", "exactly one ds:Signature, a child of the root, is allowed")
    sig = everywhere[0]
    if sig.getnext() is not None:
        raise XmlError("signature", "ds:Signature must be the root's last element")
    shape = _check_shape(sig)
    cert = trust.lookup(shape.issuer, shape.serial)
    if cert is None:
        raise XmlError("unknown-signer", f"signer {shape.issuer} serial {shape.serial} is not in "
                                         f"the trust store {trust.path}")

    def refused(why):
        return XmlError("signature", f"the signature does not verify with {cert.name} ({why})")

    key = cert.public_key
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise refused("its certificate's key is not an EC key")
    try:
        raw = base64.b64decode("".join((shape.signature_value or "").split()), validate=True)
        want = base64.b64decode("".join((shape.digest_value or "").split()), validate=True)
    except ValueError:
        raise refused("SignatureValue or DigestValue is not base64") from None
    n = (key.curve.key_size + 7) // 8
    if len(raw) != 2 * n:
        raise refused(f"SignatureValue is {len(raw)} bytes, ecdsa-sha256 with this key is {2 * n}")
    try:
        key.verify(encode_dss_signature(int.from_bytes(raw[:n], "big"),
                                        int.from_bytes(raw[n:], "big")),
                   _c14n(shape.signed_info, True, shape.c14n_prefixes),
                   ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise refused("InvalidSignature: SignedInfo was not signed by this key") from None
    doc = copy.deepcopy(root)
    _detach(doc[root.index(sig)])       # the enveloped-signature transform
    digest, signed = _document_digest(doc, shape.digest_exclusive, shape.digest_prefixes)
    if not hmac.compare_digest(digest, want):
        raise refused("InvalidDigest: the document is not the one that was signed")
    return Verified(parse(signed, max_bytes=len(signed) + 1), cert)


def b64(data):
    return base64.b64encode(bytes(data)).decode()


def unb64(text, what="GBCSPayload"):
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except ValueError:
        raise UserError(f"{what} is not base64") from None
