"""GBCS security on the host with `cryptography` (../shared/gbcs/NOTES.md 2.1-2.3).

- The Supplier signs a PRECOMMAND: ECDSA P-256 / SHA-256 over PRECOMMAND[1:], the
  signature as raw r||s after a `40` length byte (a Signed Pre-Command).
- The ACB wraps a Signed Pre-Command in a MAC header and appends a 12-byte MAC: an
  AES-128-GCM tag over an empty plaintext whose key comes from the ECDH secret Z of
  the ACB's and the meter's Key Agreement keys and the APDU's own header fields.
- A meter signs critical Responses and Alerts with its Digital Signing key and MACs
  non-critical alerts with Z of its KA key and the Supplier's.

Public API:
    load_private_key(path_or_pem), load_public_key(path_or_pem_or_cert),
    load_certificate(path_or_pem), public_point(key) -> 65 bytes
    sign(priv, data) -> r||s; verify(pub, data, r_s) -> bool
    sign_precommand(priv, precommand) -> signed pre-command
    sign_apdu(priv, apdu_without_signature) -> apdu + 40 + r||s
    verify_apdu(pub, apdu_or_message) -> bool
    ecdh(priv, pub) -> Z (32 bytes)
    kdf_mac_key(z, originator, cra, counter, recipient) -> 16-byte AES key
    mac(z, apdu) -> 12 bytes
    wrap(acb_ka_priv, meter_ka_pub, signed_precommand) -> COMMAND
    wrap_with_z(z, apdu) -> MAC header + apdu + MAC
    unwrap(message) -> (apdu, mac)
    check_mac(z, message) -> bool; check_mac_keys(priv, pub, message) -> bool
    kdf_encryption_key(z, originator, counter, recipient) -> 16-byte AES key
    seal(z, originator, counter, recipient, plaintext) -> 31 00000000 | ct | tag
    unseal(z, originator, counter, recipient, sealed) -> plaintext (SealError)

Encrypted personal data (NOTES 7, the Responses of the prepayment registers reads):
AES-128-GCM with a 12-byte tag; the key is the MAC's KDF with 04 in place of the
CRA flag, Z of the meter's and the Supplier's KA keys; IV = originator || 00000000;
AAD = 31, the security control byte of the header 31 00 00 00 00 before the
ciphertext. For a Response the originator is the meter and the counter the
Command's.
"""

import hashlib
import hmac
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gbmeter.gbcs import codec

# NOTES 2.2: the KDF's fixed parts
KDF_COUNTER = b"\x00\x00\x00\x01"
KDF_ALGORITHM_ID = bytes.fromhex("60857406080300")   # AES-128-GCM MAC, GBCS
KDF_TRANSACTION_ID_LENGTH = b"\x09"                  # CRA + 8-byte counter
MAC_AAD_PREFIX = bytes.fromhex("110000000000")     # security control 11 + zeros
KDF_ENCRYPTION = 0x04                                # in place of the CRA flag (NOTES 7)
SEALED_HEADER = bytes.fromhex("3100000000")          # security control 31 + invocation
SEALED_AAD = SEALED_HEADER[:1]
SEALED_TAG_LEN = 12

CURVE = ec.SECP256R1()


class KeyFileError(ValueError):
    """A key or certificate file that cannot be used."""


# --- keys ---------------------------------------------------------------------

def _pem_bytes(src):
    if isinstance(src, (bytes, bytearray)):
        return bytes(src)
    p = Path(src)
    try:
        return p.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read {p}: {e.strerror}") from None


def _check_curve(key, where):
    if not isinstance(key.curve, ec.SECP256R1):
        raise KeyFileError(f"{where}: key is on {key.curve.name}, GBCS uses P-256")
    return key


def load_private_key(src):
    """A PKCS#8 (or SEC1) PEM private key, from a path or bytes."""
    data = _pem_bytes(src)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{src if not isinstance(src, bytes) else 'key'} is not an "
                        f"unencrypted PEM private key ({e})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError("not an elliptic-curve private key")
    return _check_curve(key, str(src) if not isinstance(src, bytes) else "key")


def load_certificate(src):
    data = _pem_bytes(src)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise KeyFileError(f"not a PEM certificate ({e})") from None


def load_public_key(src):
    """A P-256 public key from a certificate, a PEM public key, a 65-byte point, or a
    key object (returned as is). Certificate dates are not checked (ZAZ1 expired)."""
    if isinstance(src, ec.EllipticCurvePublicKey):
        return src
    if isinstance(src, ec.EllipticCurvePrivateKey):
        return src.public_key()
    if isinstance(src, x509.Certificate):
        key = src.public_key()
    elif isinstance(src, (bytes, bytearray)) and len(src) == 65 and src[0] == 4:
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(CURVE, bytes(src))
        except ValueError:
            raise KeyFileError("65 bytes that are not a point on P-256") from None
    else:
        data = _pem_bytes(src)
        if b"BEGIN CERTIFICATE" in data:
            key = load_certificate(data).public_key()
        elif b"PRIVATE KEY" in data:
            key = load_private_key(data).public_key()
        else:
            try:
                key = serialization.load_pem_public_key(data)
            except ValueError:
                raise KeyFileError(f"{src if not isinstance(src, bytes) else 'input'} is "
                                "neither a certificate nor a public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyFileError("not an elliptic-curve public key")
    return _check_curve(key, "public key")


def public_point(key):
    """Uncompressed point 04 || X || Y (65 bytes)."""
    key = load_public_key(key)
    return key.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


# --- signatures -------------------------------------------------------------------

def sign(priv, data):
    """ECDSA P-256/SHA-256 as raw r||s (deterministic nonce, RFC 6979)."""
    der = priv.sign(bytes(data), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(pub, data, r_s):
    r_s = bytes(r_s)
    if len(r_s) != codec.SIGNATURE_LEN:
        return False
    der = encode_dss_signature(int.from_bytes(r_s[:32], "big"), int.from_bytes(r_s[32:], "big"))
    try:
        load_public_key(pub).verify(der, bytes(data), ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def sign_apdu(priv, apdu):
    """Append `40` + r||s to an unsigned APDU (PRECOMMAND, Response or Alert that ends
    after its content). The signature covers every byte after the leading DF."""
    apdu = bytes(apdu)
    parsed = codec.parse_apdu(apdu)
    if parsed["signature_length"] is not None:
        raise ValueError("the APDU already has a signature length byte")
    return apdu + bytes([codec.SIGNATURE_LEN]) + sign(priv, apdu[1:])


def sign_precommand(priv, precommand):
    """Signed Pre-Command = PRECOMMAND + 40 + r||s over PRECOMMAND[1:]."""
    return sign_apdu(priv, precommand)


def verify_apdu(pub, apdu):
    """True when the APDU (or a whole message with MAC header) carries a valid
    signature by `pub`; False when the signature is wrong or absent."""
    m = codec.parse_message(apdu)
    if not m["signature"]:
        return False
    return verify(pub, m["signed_part"], m["signature"])


# --- MAC (NOTES 2.2) -------------------------------------------------------------

def ecdh(priv, pub):
    """The P-256 ECDH shared secret Z (x coordinate, 32 bytes)."""
    return priv.exchange(ec.ECDH(), load_public_key(pub))


def kdf_mac_key(z, originator, cra, counter, recipient):
    """First 16 bytes of SHA-256(00000001 || Z || AlgorithmID || originator ||
    09 || CRA || counter || recipient)."""
    h = hashlib.sha256()
    h.update(KDF_COUNTER)
    h.update(bytes(z))
    h.update(KDF_ALGORITHM_ID)
    h.update(bytes(originator))
    h.update(KDF_TRANSACTION_ID_LENGTH)
    h.update(bytes([cra]))
    h.update(int(counter).to_bytes(8, "big"))
    h.update(bytes(recipient))
    return h.digest()[:16]


def mac(z, apdu):
    """The 12-byte MAC of a General-Signing APDU (signature included) under Z."""
    apdu = bytes(apdu)
    m = codec.parse_apdu(apdu)
    key = kdf_mac_key(z, m["originator"], m["cra"], m["counter"], m["recipient"])
    iv = m["originator"] + b"\x00\x00\x00\x00"
    tag = AESGCM(key).encrypt(iv, b"", MAC_AAD_PREFIX + apdu)
    return tag[:codec.MAC_LEN]


def wrap_with_z(z, apdu):
    return codec.build_message(apdu, mac(z, apdu))


def wrap(acb_ka_priv, meter_ka_pub, signed_precommand):
    """COMMAND = MAC header + Signed Pre-Command + MAC, as the ACB makes it (a
    non-critical Command, signature length 00 and no Supplier signature, likewise).
    Z is ECDH of the ACB's KA private key and the meter's KA public key."""
    signed_precommand = bytes(signed_precommand)
    m = codec.parse_apdu(signed_precommand)
    if m["cra"] != codec.CRA_COMMAND:
        raise ValueError(f"CRA flag is {m['cra']:02X}, a Command has 01")
    if m["signature_length"] is None:
        raise ValueError("not a Signed Pre-Command: no signature after the content "
                         "(a non-critical Command ends with signature length 00)")
    return wrap_with_z(ecdh(acb_ka_priv, meter_ka_pub), signed_precommand)


def unwrap(message):
    """(APDU, MAC) of a message with a MAC header."""
    m = codec.parse_message(message)
    if m["mac"] is None:
        raise codec.DecodeError(0, "mac_header", "no MAC header (message starts with DF)")
    return m["apdu"], m["mac"]


def check_mac(z, message):
    """True when the message's MAC is right for Z; False when wrong or absent."""
    m = codec.parse_message(message)
    if m["mac"] is None:
        return False

    return hmac.compare_digest(mac(z, m["apdu"]), m["mac"])


def check_mac_keys(priv, pub, message):
    """check_mac with Z made from one party's KA private key and the other's KA
    public key (either side of the pair gives the same Z)."""
    return check_mac(ecdh(priv, pub), message)


# --- encrypted personal data (NOTES 7) -------------------------------------------------

class SealError(ValueError):
    """Sealed data that does not open: not 31 00000000 | ciphertext | tag, or its
    ciphertext or tag altered (or sealed for other keys or another counter)."""


def kdf_encryption_key(z, originator, counter, recipient):
    """The AES key of a Response's encrypted part: the MAC's KDF with 04 as the CRA."""
    return kdf_mac_key(z, originator, KDF_ENCRYPTION, counter, recipient)


def seal(z, originator, counter, recipient, plaintext):
    """31 00 00 00 00 | ciphertext | 12-byte tag, as a meter seals its personal data
    for `recipient` (what the firmware's seal.py does, for tests and tools)."""
    key = kdf_encryption_key(z, originator, counter, recipient)
    enc = Cipher(algorithms.AES(key), modes.GCM(bytes(originator) + bytes(4))).encryptor()
    enc.authenticate_additional_data(SEALED_AAD)
    ct = enc.update(bytes(plaintext)) + enc.finalize()
    return SEALED_HEADER + ct + enc.tag[:SEALED_TAG_LEN]


def unseal(z, originator, counter, recipient, sealed):
    """The plaintext of sealed data; SealError when it is not well formed or its tag
    does not verify (nothing of it is returned then)."""
    sealed = bytes(sealed)
    if len(sealed) < len(SEALED_HEADER) + SEALED_TAG_LEN or \
            sealed[:len(SEALED_HEADER)] != SEALED_HEADER:
        raise SealError("not encrypted data: expected 31 00 00 00 00, ciphertext and a "
                        "12-byte tag")
    ct, tag = sealed[len(SEALED_HEADER):-SEALED_TAG_LEN], sealed[-SEALED_TAG_LEN:]
    key = kdf_encryption_key(z, originator, counter, recipient)
    dec = Cipher(algorithms.AES(key),
                 modes.GCM(bytes(originator) + bytes(4), tag, min_tag_length=SEALED_TAG_LEN)
                 ).decryptor()
    dec.authenticate_additional_data(SEALED_AAD)
    plain = dec.update(ct)
    try:
        dec.finalize()
    except InvalidTag:
        raise SealError("the ciphertext or its tag does not verify (altered, or sealed "
                        "with other keys or for another counter)") from None
    return plain
