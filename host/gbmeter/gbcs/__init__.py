"""The wire and its security: GBCS messages and the keys that make them trustworthy.

    fields     construct building blocks: located decode errors, DER lengths, hex input
    apdu       the MAC header (General-Ciphering) and the General-Signing APDU (NOTES 2)
    gbz        GSME content: GBZ components and ZCL Prepayment payloads (NOTES 3)
    dlms       ESME content: A-XDR data, Access-Request / -Response (NOTES 4)
    alerts     alert content, GBZ (GSME) or DLMS data-notification (ESME) (NOTES 2.3)
    content    decode any content by what it starts with; use-case names
    codec      the one import for all of the above (what most callers use)
    crypto     ECDSA signatures, ECDH, the GCM MAC, wrapping (NOTES 2.1-2.2)
    keys       key folders in ZAZ1 naming, parties and roles
    pki        a self-made test PKI (`gbmeter keys init`) and device certificates

Imports only the standard library, construct, cryptography and gbmeter's base
modules (errors, paths, profiles).
"""
