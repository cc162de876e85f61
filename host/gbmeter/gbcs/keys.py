"""Key folders in the ZAZ1 naming of ../shared/gbcs/keys, and a self-made test PKI.

A folder holds, per party named by its system title (16 lowercase hex digits):

    <title>-ds.pem  <title>-ka.pem    X.509 certificates (Digital Signing, Key Agreement)
    <title>-ds.key  <title>-ka.key    PKCS#8 private keys, where we have them

Organisations carry their role in the certificate subject OU (02 Supplier, 03 Network
Operator, 04 ACB) and their system title in x500UniqueIdentifier; device (meter)
certificates have an empty subject and the title in a subjectAltName
hardwareModuleName. Certificate dates are never checked: ZAZ1 expired in 2025.

gbmeter.gbcs.pki makes folders of the same shape (`gbmeter keys init`).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from gbmeter.gbcs import codec, crypto
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
    "00db1234567890a0", "00db1234567890a1", "00db1234567890a3",
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
                    party.certs[usage] = crypto.load_certificate(f)
                else:
                    party.private[usage] = crypto.load_private_key(f)
            except crypto.KeyFileError as e:
                text = str(e)       # named once, even when the reason names the file
                raise KeyFolderError(text if str(f) in text else f"{f}: {text}") from None
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
            if priv is not None and crypto.public_point(priv) != crypto.public_point(cert.public_key()):
                raise KeyFolderError(f"{self.path / f'{party.eui}-{usage}.key'}: private key "
                                     "does not match the certificate")
        if len(roles) > 1:
            raise KeyFolderError(f"{party.eui} in {self.path}: its certificates name "
                                 "different roles")
        party.role = roles.pop() if roles else None
        if not party.certs:
            raise KeyFolderError(f"{party.eui} in {self.path}: private keys without "
                                 "certificates")

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
                raise KeyFolderError(f"{p.eui} is a {p.role_name} in {self.path}, not a "
                                     f"{role_name(role)}")
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
                "ds_public_key": crypto.public_point(p.ds_pub).hex() if p.ds_pub else None,
                "ka_public_key": crypto.public_point(p.ka_pub).hex() if p.ka_pub else None,
            })
        return out
