"""Key folders in the ZAZ1 naming of ../shared/gbcs/keys, and a self-made test PKI.

A folder holds, per party named by its system title (16 lowercase hex digits):

    <title>-ds.pem  <title>-ka.pem    X.509 certificates (Digital Signing, Key Agreement)
    <title>-ds.key  <title>-ka.key    PKCS#8 private keys, where we have them

Organisations carry their role in the certificate subject OU (02 Supplier, 03 Network
Operator, 04 ACB) and their system title in x500UniqueIdentifier; device (meter)
certificates have an empty subject and the title in a subjectAltName
hardwareModuleName. Certificate dates are never checked: ZAZ1 expired in 2025.

`init(path)` makes a complete test PKI of the same shape (a Supplier, a second
Supplier, a Network Operator and an ACB) with fresh random system titles, signed by a
test root whose key is kept as root-ca.key / root-ca.pem so that `issue_device_cert`
can later certify a provisioned meter's keys in the same folder.
"""

import datetime
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from gbmeter import codec, gbcs
from gbmeter.errors import UserError

ROLE_SUPPLIER = 2
ROLE_NETWORK_OPERATOR = 3
ROLE_ACB = 4
ROLE_DEVICE = None            # meters: no OU in the certificate subject

ROOT_KEY = "root-ca.key"
ROOT_CERT = "root-ca.pem"
FILE_RE = re.compile(r"^([0-9a-f]{16})-(ds|ka)\.(pem|key)$")

# GBCS device certificates: subjectAltName otherName hardwareModuleName (RFC 4108)
# = SEQUENCE { hwType OID, hwSerialNum OCTET STRING (the device's EUI-64) }
OID_HARDWARE_MODULE_NAME = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.4")
OID_GBCS_HW_TYPE = "1.2.826.0.1.8641679.1.2.2.1"
ZAZ1_TITLES = {  # the published test PKI: fresh folders must not reuse these
    "90b3d51f30010000", "90b3d51f30030000", "90b3d51f30020000", "90b3d51f30000002",
    "00db1234567890a0", "00db1234567890a1",
}
# What `init` makes: (label, role) in the order of NOTES 1
TEST_PARTIES = (
    ("supplier", ROLE_SUPPLIER),
    ("second supplier", ROLE_SUPPLIER),
    ("network operator", ROLE_NETWORK_OPERATOR),
    ("acb", ROLE_ACB),
)


class KeyFolderError(UserError):
    pass


def role_names():
    return dict(codec.load_usecases().ROLE_NAMES)


def role_name(role):
    if role is None:
        return "device"
    return role_names().get(role, f"role {role:02d}")


def parse_role(role):
    """2, "02", "supplier", "network-operator", "acb", "device" -> int or None."""
    if role is None or isinstance(role, int):
        return role
    text = str(role).strip().lower().replace("_", "-").replace(" ", "-")
    if text == "device":
        return None
    for num, name in role_names().items():
        if text == name:
            return num
    if text.isdigit():
        return int(text)
    raise KeyFolderError(f"unknown role {role!r}: use supplier, network-operator, acb or device")


def normalise_title(eui):
    """'90-B3-D5-1F-30-01-00-00', '90B3D51F30010000' or 8 bytes -> 16 lowercase hex."""
    if isinstance(eui, (bytes, bytearray)):
        if len(eui) != 8:
            raise KeyFolderError("a system title is 8 bytes")
        return bytes(eui).hex()
    text = str(eui).strip().lower().replace("-", "").replace(":", "")
    if not re.fullmatch(r"[0-9a-f]{16}", text):
        raise KeyFolderError(f"{eui!r} is not a system title (16 hex digits, e.g. "
                             "90-B3-D5-1F-30-01-00-00)")
    return text


# --- reading certificates -----------------------------------------------------------

def _der_read(data, pos):
    """(tag, value, next position) of one DER TLV."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > len(data):
        raise ValueError("DER value runs past its end")
    return tag, data[pos:pos + n], pos + n


def _hw_serial(other_name_value):
    """The hwSerialNum of a hardwareModuleName (SEQUENCE { OID, OCTET STRING })."""
    tag, seq, _ = _der_read(other_name_value, 0)
    if tag != 0x30:
        raise ValueError("hardwareModuleName is not a SEQUENCE")
    tag, _, pos = _der_read(seq, 0)
    if tag != 0x06:
        raise ValueError("hardwareModuleName has no hwType")
    tag, serial, _ = _der_read(seq, pos)
    if tag != 0x04:
        raise ValueError("hardwareModuleName has no hwSerialNum")
    return serial


def cert_identity(cert):
    """(role, system title bytes or None) from a certificate: role from the subject
    OU (None for a device certificate), title from x500UniqueIdentifier or the
    subjectAltName hardwareModuleName."""
    role = None
    title = None
    for attr in cert.subject:
        if attr.oid == NameOID.ORGANIZATIONAL_UNIT_NAME:
            try:
                role = int(attr.value, 16)
            except ValueError:
                raise ValueError(f"subject OU {attr.value!r} is not a role number") from None
        elif attr.oid == NameOID.X500_UNIQUE_IDENTIFIER:
            value = bytes(attr.value)
            title = value[1:] if len(value) == 9 else value   # first byte: unused bits
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for name in san:
            if isinstance(name, x509.OtherName) and name.type_id == OID_HARDWARE_MODULE_NAME:
                title = _hw_serial(name.value)
    return role, title


def cert_usage(cert):
    """'ds' or 'ka' from the key usage extension (None when absent)."""
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if ku.digital_signature:
        return "ds"
    if ku.key_agreement:
        return "ka"
    return None


# --- the folder --------------------------------------------------------------------

@dataclass
class Party:
    eui: str                       # 16 lowercase hex digits
    role: int = None               # 2 Supplier, 3 Network Operator, 4 ACB, None device
    certs: dict = field(default_factory=dict)     # "ds"/"ka" -> x509.Certificate
    private: dict = field(default_factory=dict)   # "ds"/"ka" -> private key

    @property
    def title(self):
        return bytes.fromhex(self.eui)

    @property
    def role_name(self):
        return role_name(self.role)

    @property
    def ds_pub(self):
        c = self.certs.get("ds")
        return c.public_key() if c else None

    @property
    def ka_pub(self):
        c = self.certs.get("ka")
        return c.public_key() if c else None

    @property
    def ds_priv(self):
        return self.private.get("ds")

    @property
    def ka_priv(self):
        return self.private.get("ka")

    def pretty_eui(self):
        return "-".join(self.eui[i:i + 2] for i in range(0, 16, 2)).upper()


class KeyFolder:
    """The parties of a key folder. Raises KeyFolderError naming the file when one is
    unreadable, its certificate names another system title, or a private key does
    not match its certificate."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise KeyFolderError(f"key folder {self.path} does not exist "
                                 "(make one with `gbmeter keys init DIR`)")
        self.parties = {}
        for f in sorted(self.path.iterdir()):
            m = FILE_RE.match(f.name)
            if not m:
                continue
            eui, usage, kind = m.groups()
            party = self.parties.setdefault(eui, Party(eui))
            try:
                if kind == "pem":
                    party.certs[usage] = gbcs.load_certificate(f)
                else:
                    party.private[usage] = gbcs.load_private_key(f)
            except gbcs.KeyFileError as e:
                raise KeyFolderError(f"{f}: {e}") from None
        for eui, party in self.parties.items():
            self._check(party)

    def _check(self, party):
        roles = set()
        for usage, cert in party.certs.items():
            where = self.path / f"{party.eui}-{usage}.pem"
            try:
                role, title = cert_identity(cert)
            except ValueError as e:
                raise KeyFolderError(f"{where}: {e}") from None
            if title is not None and title.hex() != party.eui:
                raise KeyFolderError(f"{where}: certificate names system title "
                                     f"{title.hex()}, not the one in the file name")
            roles.add(role)
            priv = party.private.get(usage)
            if priv is not None and gbcs.public_point(priv) != gbcs.public_point(cert.public_key()):
                raise KeyFolderError(f"{self.path / f'{party.eui}-{usage}.key'}: private key "
                                     "does not match the certificate")
        if len(roles) > 1:
            raise KeyFolderError(f"{party.eui}: its certificates name different roles")
        party.role = roles.pop() if roles else None
        if not party.certs:
            raise KeyFolderError(f"{party.eui}: private keys without certificates")

    def party(self, eui):
        key = normalise_title(eui)
        if key not in self.parties:
            raise KeyFolderError(f"no party {key} in {self.path}")
        return self.parties[key]

    def by_role(self, role):
        """Parties with that role, sorted by system title (lowest first)."""
        role = parse_role(role)
        return sorted((p for p in self.parties.values() if p.role == role), key=lambda p: p.eui)

    def pick(self, role, eui=None):
        """The party named by eui (which must have the role), else the lowest system
        title with the role."""
        role = parse_role(role)
        if eui is not None:
            p = self.party(eui)
            if p.role != role:
                raise KeyFolderError(f"{p.eui} is a {p.role_name}, not a {role_name(role)}")
            return p
        found = self.by_role(role)
        if not found:
            raise KeyFolderError(f"no {role_name(role)} certificate in {self.path}")
        return found[0]

    def has_root(self):
        return (self.path / ROOT_KEY).exists() and (self.path / ROOT_CERT).exists()

    def describe(self):
        """A JSON-ready list of the parties."""
        out = []
        for p in sorted(self.parties.values(), key=lambda p: p.eui):
            out.append({
                "system_title": p.eui, "role": p.role_name,
                "role_code": None if p.role is None else f"{p.role:02d}",
                "certificates": sorted(p.certs), "private_keys": sorted(p.private),
                "ds_public_key": gbcs.public_point(p.ds_pub).hex() if p.ds_pub else None,
                "ka_public_key": gbcs.public_point(p.ka_pub).hex() if p.ka_pub else None,
            })
        return out


# --- making a test PKI -------------------------------------------------------------

def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _random_title(taken):
    while True:
        b = bytearray(secrets.token_bytes(8))
        b[0] = (b[0] & 0xFC) | 0x02          # locally administered, unicast EUI-64
        eui = bytes(b).hex()
        if eui not in taken and eui not in ZAZ1_TITLES:
            taken.add(eui)
            return eui


def _write(path, data, private=False):
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _ski(pub):
    # 8-byte key identifiers as in ZAZ1
    return x509.SubjectKeyIdentifier.from_public_key(pub).digest[:8]


def _issue(subject, pub, usage, issuer_cert, issuer_key, not_after, san=None):
    ku = dict(digital_signature=usage == "ds", content_commitment=False,
              key_encipherment=False, data_encipherment=False, key_agreement=usage == "ka",
              key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer_cert.subject)
         .public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(_now() - datetime.timedelta(days=1))
         .not_valid_after(not_after)
         .add_extension(x509.KeyUsage(**ku), critical=True)
         .add_extension(x509.SubjectKeyIdentifier(_ski(pub)), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier(_ski(issuer_key.public_key()), None, None),
                        critical=False))
    if san is not None:
        b = b.add_extension(san, critical=True)
    return b.sign(issuer_key, hashes.SHA256())


def org_subject(role, eui):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{role:02d}"),
        x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + bytes.fromhex(eui),
                           _type=_ASN1Type.BitString),
    ])


def _hardware_module_name(eui):
    arcs = [int(a) for a in OID_GBCS_HW_TYPE.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for a in arcs[2:]:
        chunk = [a & 0x7F]
        a >>= 7
        while a:
            chunk.insert(0, 0x80 | (a & 0x7F))
            a >>= 7
        body += bytes(chunk)
    inner = bytes([0x06, len(body)]) + body + bytes([0x04, 8]) + bytes.fromhex(eui)
    return bytes([0x30, len(inner)]) + inner


def _make_root(path):
    key = ec.generate_private_key(gbcs.CURVE)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "07"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "gbmeter test root")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(_now() - datetime.timedelta(days=1))
            .not_valid_after(_now() + datetime.timedelta(days=365 * 30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                         False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier(_ski(key.public_key())), critical=False)
            .sign(key, hashes.SHA256()))
    _write(path / ROOT_KEY, _key_pem(key), private=True)
    _write(path / ROOT_CERT, _cert_pem(cert))
    return key, cert


def _pki_files(path):
    return [f for f in path.iterdir() if FILE_RE.match(f.name) or f.name in (ROOT_KEY, ROOT_CERT)]


def init(path, force=False):
    """Create a complete test PKI in `path`; returns {label: system title}.
    Refuses when the folder already holds key files, unless force (which removes
    only the files of the old PKI, nothing else in the folder)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise KeyFolderError(f"{path} exists and is not a folder")
    path.mkdir(parents=True, exist_ok=True)
    old = _pki_files(path)
    if old and not force:
        raise KeyFolderError(f"{path} already holds a PKI ({len(old)} key files); "
                             "use --force to replace it")
    for f in old:
        f.unlink()
    root_key, root_cert = _make_root(path)
    taken = set()
    titles = [_random_title(taken) for _ in TEST_PARTIES]
    # the first Supplier gets the lower title, so it is the default one (the one the
    # meters trust) and the second stays second, as in ZAZ1
    sup = sorted(t for t, (_, role) in zip(titles, TEST_PARTIES) if role == ROLE_SUPPLIER)
    titles = [sup.pop(0) if role == ROLE_SUPPLIER else t
              for t, (_, role) in zip(titles, TEST_PARTIES)]
    made = {}
    not_after = _now() + datetime.timedelta(days=365 * 20)
    for (label, role), eui in zip(TEST_PARTIES, titles):
        for usage in ("ds", "ka"):
            key = ec.generate_private_key(gbcs.CURVE)
            cert = _issue(org_subject(role, eui), key.public_key(), usage, root_cert,
                          root_key, not_after)
            _write(path / f"{eui}-{usage}.key", _key_pem(key), private=True)
            _write(path / f"{eui}-{usage}.pem", _cert_pem(cert))
        made[label] = eui
    return made


def issue_device_cert(folder, eui, pub, usage):
    """Certify a meter's DS or KA public key (key object, PEM, or 65-byte point) with
    the folder's test root and save it as <eui>-<usage>.pem; returns the path.
    The certificate has the ZAZ1 device shape: empty subject, hardwareModuleName."""
    path = folder.path if isinstance(folder, KeyFolder) else Path(folder)
    if usage not in ("ds", "ka"):
        raise KeyFolderError(f"usage must be ds or ka, not {usage!r}")
    eui = normalise_title(eui)
    if not ((path / ROOT_KEY).exists() and (path / ROOT_CERT).exists()):
        raise KeyFolderError(f"{path} has no {ROOT_KEY} / {ROOT_CERT}: device certificates can "
                             "only be issued in a folder made by `gbmeter keys init`")
    root_key = gbcs.load_private_key(path / ROOT_KEY)
    root_cert = gbcs.load_certificate(path / ROOT_CERT)
    try:
        pub = gbcs.load_public_key(pub)
    except gbcs.KeyFileError as e:
        raise KeyFolderError(f"meter {usage} public key: {e}") from None
    san = x509.SubjectAlternativeName([x509.OtherName(OID_HARDWARE_MODULE_NAME,
                                                      _hardware_module_name(eui))])
    cert = _issue(x509.Name([]), pub, usage, root_cert, root_key,
                  datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc),
                  san=san)
    out = path / f"{eui}-{usage}.pem"
    _write(out, _cert_pem(cert))
    return out
