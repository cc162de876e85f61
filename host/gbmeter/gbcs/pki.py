"""A self-made test PKI in the shape of ZAZ1 (gbmeter.gbcs.keys).

`init(path)` makes a complete test PKI (a Supplier, a second Supplier, a Network
Operator and an ACB) with fresh random system titles, signed by a test root whose key
is kept as root-ca.key / root-ca.pem so that `issue_device_cert` can later certify a
provisioned meter's keys in the same folder.
"""

import datetime
import os
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from gbmeter.gbcs import crypto
from gbmeter.gbcs.keys import (
    FILE_RE, OID_GBCS_HW_TYPE, OID_HARDWARE_MODULE_NAME, ROLE_SUPPLIER, ROOT_CERT, ROOT_KEY, TEST_PARTIES, ZAZ1_TITLES,
    KeyFolder, KeyFolderError, normalise_title)


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
    key = ec.generate_private_key(crypto.CURVE)
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
            key = ec.generate_private_key(crypto.CURVE)
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
    root_key = crypto.load_private_key(path / ROOT_KEY)
    root_cert = crypto.load_certificate(path / ROOT_CERT)
    try:
        pub = crypto.load_public_key(pub)
    except crypto.KeyFileError as e:
        raise KeyFolderError(f"meter {usage} public key: {e}") from None
    san = x509.SubjectAlternativeName([x509.OtherName(OID_HARDWARE_MODULE_NAME,
                                                      _hardware_module_name(eui))])
    cert = _issue(x509.Name([]), pub, usage, root_cert, root_key,
                  datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc),
                  san=san)
    out = path / f"{eui}-{usage}.pem"
    _write(out, _cert_pem(cert))
    return out
