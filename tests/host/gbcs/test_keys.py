"""gbmeter.gbcs.keys: key folders in ZAZ1 naming and the self-made test PKI."""

import datetime
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gbmeter.gbcs import crypto, keys
from gbmeter.gbcs import pki as testpki
from gbmeter import paths

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs/keys (ZAZ1 test PKI) is absent")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    made = testpki.init(d)
    return d, made


def _snapshot(d):
    return {f.name: f.read_bytes() for f in sorted(d.iterdir())}


def test_init_makes_four_parties_in_zaz1_shape(pki):
    d, made = pki
    assert set(made) == {"supplier", "second supplier", "network operator", "acb"}
    assert len(set(made.values())) == 4
    assert not set(made.values()) & keys.ZAZ1_TITLES
    assert made["supplier"] < made["second supplier"]
    names = {f.name for f in d.iterdir()}
    for eui in made.values():
        for suffix in ("-ds.pem", "-ka.pem", "-ds.key", "-ka.key"):
            assert eui + suffix in names
    assert {"root-ca.key", "root-ca.pem"} <= names
    root = x509.load_pem_x509_certificate((d / "root-ca.pem").read_bytes())
    roles = {"supplier": "02", "second supplier": "02", "network operator": "03", "acb": "04"}
    for label, eui in made.items():
        for usage in ("ds", "ka"):
            cert = x509.load_pem_x509_certificate((d / f"{eui}-{usage}.pem").read_bytes())
            ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
            assert [a.value for a in ou] == [roles[label]]
            uid = cert.subject.get_attributes_for_oid(NameOID.X500_UNIQUE_IDENTIFIER)
            assert bytes(uid[0].value) == b"\x00" + bytes.fromhex(eui)
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
            assert ku.critical
            assert ku.value.digital_signature == (usage == "ds")
            assert ku.value.key_agreement == (usage == "ka")
            assert isinstance(cert.public_key().curve, ec.SECP256R1)
            cert.verify_directly_issued_by(root)
            raw = (d / f"{eui}-{usage}.key").read_bytes()
            assert raw.startswith(b"-----BEGIN PRIVATE KEY-----")      # PKCS#8
            key = serialization.load_pem_private_key(raw, None)
            assert crypto.public_point(key) == crypto.public_point(cert.public_key())
            assert stat.S_IMODE((d / f"{eui}-{usage}.key").stat().st_mode) == 0o600


def test_key_folder_reads_roles_and_defaults(pki):
    d, made = pki
    f = keys.KeyFolder(d)
    assert [p.eui for p in f.by_role("supplier")] == sorted(
        [made["supplier"], made["second supplier"]])
    assert f.pick("supplier").eui == made["supplier"]
    assert f.pick(2, made["second supplier"]).eui == made["second supplier"]
    assert f.pick("network-operator").role == 3
    acb = f.pick("acb")
    assert acb.eui == made["acb"] and acb.ka_priv is not None and acb.ds_pub is not None
    with pytest.raises(keys.KeyFolderError):
        f.pick("acb", made["supplier"])
    with pytest.raises(keys.KeyFolderError):
        f.pick("device")
    assert f.party(made["acb"].upper()).eui == made["acb"]
    assert f.has_root()


def test_init_refuses_to_overwrite_and_changes_nothing(tmp_path):
    testpki.init(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(keys.KeyFolderError) as e:
        testpki.init(tmp_path)
    assert "--force" in str(e.value)
    assert _snapshot(tmp_path) == before


def test_init_force_replaces_only_pki_files(tmp_path):
    old = testpki.init(tmp_path)
    (tmp_path / "counters.json").write_text("{}")
    new = testpki.init(tmp_path, force=True)
    names = {f.name for f in tmp_path.iterdir()}
    assert "counters.json" in names
    assert not any(n.startswith(eui) for eui in old.values() for n in names)
    assert len(keys.KeyFolder(tmp_path).parties) == 4
    assert set(new.values()) != set(old.values())


def test_issue_device_cert_and_read_back(tmp_path):
    d = tmp_path
    testpki.init(d)
    ds = ec.generate_private_key(ec.SECP256R1())
    ka = ec.generate_private_key(ec.SECP256R1())
    p1 = testpki.issue_device_cert(d, "00-DB-12-34-56-78-90-A1", ds.public_key(), "ds")
    p2 = testpki.issue_device_cert(keys.KeyFolder(d), "00db1234567890a1",
                                crypto.public_point(ka), "ka")
    assert p1.name == "00db1234567890a1-ds.pem" and p2.name == "00db1234567890a1-ka.pem"
    cert = x509.load_pem_x509_certificate(p2.read_bytes())
    assert len(cert.subject) == 0
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert keys.cert_identity(cert) == (None, bytes.fromhex("00db1234567890a1"))
    assert keys.cert_usage(cert) == "ka"
    cert.verify_directly_issued_by(
        x509.load_pem_x509_certificate((d / "root-ca.pem").read_bytes()))
    meter = keys.KeyFolder(d).party("00db1234567890a1")
    assert meter.role is None and meter.role_name == "device"
    assert crypto.public_point(meter.ka_pub) == crypto.public_point(ka)
    assert meter.ds_priv is None


def test_issue_device_cert_errors(tmp_path):
    with pytest.raises(keys.KeyFolderError) as e:
        testpki.issue_device_cert(tmp_path, "00db1234567890a1",
                               ec.generate_private_key(ec.SECP256R1()).public_key(), "ds")
    assert "root-ca" in str(e.value)
    testpki.init(tmp_path)
    with pytest.raises(keys.KeyFolderError):
        testpki.issue_device_cert(tmp_path, "xyz", b"\x04" + bytes(64), "ds")
    with pytest.raises(keys.KeyFolderError):
        testpki.issue_device_cert(tmp_path, "00db1234567890a1", b"\x04" + bytes(64), "ds")
    with pytest.raises(keys.KeyFolderError):
        testpki.issue_device_cert(tmp_path, "00db1234567890a1", b"\x04" + bytes(64), "xx")


def test_folder_errors_name_the_file(tmp_path):
    made = testpki.init(tmp_path)
    sup = made["supplier"]
    # a certificate saved under another party's name
    (tmp_path / f"{sup}-ka.pem").rename(tmp_path / "0200000000000001-ka.pem")
    with pytest.raises(keys.KeyFolderError) as e:
        keys.KeyFolder(tmp_path)
    assert "0200000000000001-ka.pem" in str(e.value)
    (tmp_path / "0200000000000001-ka.pem").rename(tmp_path / f"{sup}-ka.pem")
    # a private key that does not belong to the certificate
    other = (tmp_path / f"{made['acb']}-ds.key").read_bytes()
    (tmp_path / f"{sup}-ds.key").write_bytes(other)
    with pytest.raises(keys.KeyFolderError) as e:
        keys.KeyFolder(tmp_path)
    assert f"{sup}-ds.key" in str(e.value) and "does not match" in str(e.value)
    (tmp_path / f"{sup}-ds.key").write_text("garbage")
    with pytest.raises(keys.KeyFolderError) as e:
        keys.KeyFolder(tmp_path)
    assert f"{sup}-ds.key" in str(e.value)
    with pytest.raises(keys.KeyFolderError):
        keys.KeyFolder(tmp_path / "missing")


def test_expired_certificates_are_accepted(tmp_path):
    """ZAZ1 expired in 2025: dates are never checked."""
    testpki.init(tmp_path)
    root_key = crypto.load_private_key(tmp_path / "root-ca.key")
    root = crypto.load_certificate(tmp_path / "root-ca.pem")
    key = ec.generate_private_key(ec.SECP256R1())
    eui = "0299999999999999"
    cert = (x509.CertificateBuilder().subject_name(testpki.org_subject(2, eui))
            .issuer_name(root.subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime.datetime(2015, 1, 1))
            .not_valid_after(datetime.datetime(2016, 1, 1))
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False,
                                         False, False), critical=True)
            .sign(root_key, hashes.SHA256()))
    (tmp_path / f"{eui}-ds.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    assert keys.KeyFolder(tmp_path).party(eui).role == 2


def test_role_and_title_parsing():
    assert keys.parse_role("Supplier") == 2
    assert keys.parse_role("network_operator") == 3
    assert keys.parse_role("04") == 4
    assert keys.parse_role("device") is None
    with pytest.raises(keys.KeyFolderError):
        keys.parse_role("king")
    assert keys.normalise_title("90-B3-D5-1F-30-01-00-00") == "90b3d51f30010000"
    with pytest.raises(keys.KeyFolderError):
        keys.normalise_title("90-B3")


@needs_shared
def test_zaz1_folder_roles_match_notes():
    f = keys.KeyFolder(SHARED / "gbcs" / "keys")
    roles = {eui: p.role for eui, p in f.parties.items()}
    # the parties NOTES 1 and 7 name, with their roles; any other party the folder
    # gains later is a device (a test meter: certificates without an OU)
    named = {"90b3d51f30010000": 2, "90b3d51f30030000": 2, "90b3d51f30020000": 3,
             "90b3d51f30000002": 4, "00db1234567890a0": None, "00db1234567890a1": None,
             "00db1234567890a3": None}
    assert {eui: roles.get(eui, "missing") for eui in named} == named
    assert all(role is None for eui, role in roles.items() if eui not in named)
    assert set(keys.ZAZ1_TITLES) >= set(named)
    assert f.pick("supplier").eui == "90b3d51f30010000"
    assert f.pick("acb").ka_priv is not None
    assert f.party("00db1234567890a1").ds_priv is None
    assert not f.has_root()
