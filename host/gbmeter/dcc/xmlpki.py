"""Self-made XML-signing test keys for a GBCS key folder, in the shape and file
naming of ../shared/duis/xmlsign (NOTES 8), so that the DUIS web service and its
Users can run without the ZAZ1 keys (the front-door demo on a clone without
../shared).

`init(path, gbcs_folder)` makes one XML-signing key and certificate per organisation
of the GBCS key folder: `xml-sign-<EUI>-ds` (OU 87, a User) for each Supplier and
Network Operator, `dsp-xml-sign-<EUI>-ds` (OU 89, the DCC) for the ACB. Each subject
carries the party's system title as x500UniqueIdentifier (a BIT STRING, as ZAZ1's),
which is how the service ties a request's signer to its RequestID's originator.
They are issued by a throw-away test root (its key is not kept: the trust store
looks certificates up by issuer and serial, it checks no chain). Returns the name
of the DCC's signing key (DuisService's dcc_key)."""

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from gbmeter.errors import UserError
from gbmeter.gbcs import keys as gkeys

OU_USER = "87"
OU_DCC = "89"
ISSUER = x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "07"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "gbmeter test XML root")])


def _subject(ou, eui):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
                      x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER,
                                         b"\x00" + bytes.fromhex(eui), _type=_ASN1Type.BitString)])


def _write(path, data, private=False):
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def names(gbcs_folder):
    """[(file name, OU, system title)] of the XML keys for a GBCS key folder."""
    out = []
    for eui, party in sorted(gbcs_folder.parties.items()):
        if party.role in (gkeys.ROLE_SUPPLIER, gkeys.ROLE_NETWORK_OPERATOR):
            out.append((f"xml-sign-{eui.upper()}-ds", OU_USER, eui))
        elif party.role == gkeys.ROLE_ACB:
            out.append((f"dsp-xml-sign-{eui.upper()}-ds", OU_DCC, eui))
    return out


def init(path, gbcs_folder):
    path = Path(path)
    folder = gbcs_folder if isinstance(gbcs_folder, gkeys.KeyFolder) else \
        gkeys.KeyFolder(gbcs_folder)
    made = names(folder)
    dcc = [n for n, ou, _ in made if ou == OU_DCC]
    if not dcc:
        raise UserError(f"{folder.path} has no ACB: the DCC's XML-signing key is made for it")
    path.mkdir(parents=True, exist_ok=True)
    root = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    for name, ou, eui in made:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_subject(ou, eui)).issuer_name(ISSUER)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=365 * 20))
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                             False, False), critical=True)
                .sign(root, hashes.SHA256()))
        _write(path / f"{name}.key", key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()), private=True)
        _write(path / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
    return dcc[0]
