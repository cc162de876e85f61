"""gbmeter wrap: play the ACB: put a Signed Pre-Command in a MAC header and add the
MAC made with the ACB's KA private key and the meter's KA certificate. A
non-critical Command (the reads of SR 4.3) has no Supplier signature: its
PRECOMMAND is MAC'd with signature length 00 (added when missing)."""

from gbmeter.gbcs import codec, crypto
from gbmeter.cli._common import read_hex_arg
from gbmeter.errors import UserError


def register(sub):
    p = sub.add_parser(
        "wrap", help="ACB-wrap a Signed Pre-Command into a COMMAND (prints hex)",
        description="COMMAND = MAC header + Signed Pre-Command + 12-byte MAC "
                    "(GBCS General-Ciphering, authentication only). A non-critical use "
                    "case (ECS19 / GCS14) is not signed: give its PRECOMMAND (signature "
                    "length 00 is added) or PRECOMMAND + 00; a critical one must be signed.")
    p.add_argument("--acb-key", required=True, metavar="KEY",
                   help="the ACB's KA private key (PKCS#8 PEM, e.g. <acb>-ka.key)")
    p.add_argument("--meter-ka", required=True, metavar="CERT",
                   help="the meter's KA certificate (or PEM public key)")
    p.add_argument("signed_precommand", metavar="SIGNED_PRECOMMAND_HEX",
                   help="PRECOMMAND + 40 + signature (or, non-critical, the PRECOMMAND), "
                        "as hex or a file of hex")
    p.set_defaults(func=run)


def run(args):
    spc = read_hex_arg(args.signed_precommand)
    try:
        acb = crypto.load_private_key(args.acb_key)
        meter = crypto.load_public_key(args.meter_ka)
    except crypto.KeyFileError as e:
        raise UserError(str(e)) from None
    try:
        apdu = codec.parse_apdu(spc)
        row = codec.load_usecases().find(apdu["message_code"])
        if row is not None and not row[3]:
            if apdu["signature"] is not None:
                raise UserError(f"{row[1]} is non-critical: its Command carries no Supplier "
                                "signature (the meter refuses a signed one, 8F1E)")
            if apdu["signature_length"] is None:
                spc = spc + b"\x00"
        elif row is not None and apdu["signature_length"] is not None and not apdu["signature"]:
            raise UserError(f"{row[1]} is critical: it needs the Supplier's signature "
                            "(40 + r||s), not signature length 00")
        command = crypto.wrap(acb, meter, spc)
    except codec.DecodeError as e:
        raise UserError(f"not a Signed Pre-Command: {e}") from None
    except ValueError as e:
        raise UserError(str(e)) from None
    print(command.hex().upper())
    return 0
