# The one table of GBCS use cases this meter knows: firmware and host both read it.
# The host imports this file from firmware/ (gbmeter.usecases), so keep it plain
# MicroPython- and CPython-compatible data.
#
# Columns: message code, use case, device, critical, roles allowed, since.
#   device: "esme" or "gsme"
#   roles:  remote party roles (certificate OU) allowed to originate it:
#           2 Supplier, 3 Network Operator, 4 ACB
#   since:  None for use cases every SMETS2 meter knows; "SECMP0002" for those a
#           meter from before that release does not know (device profiles use it).
# The reset codes 0F00 / 0F01 are this project's provisional codes
# (../shared/gbcs/NOTES.md section 5); change them here and only here.

SUPPLIER = 2
NETWORK_OPERATOR = 3
ACB = 4

# Every use case here is the Supplier's alone: the rows share one roles tuple (a
# tuple each costs a board 32 bytes of heap for good).
SUPPLIER_ONLY = (SUPPLIER,)

ROLE_NAMES = {SUPPLIER: "supplier", NETWORK_OPERATOR: "network-operator", ACB: "acb"}

USE_CASES = (
    # code    name      device  critical roles         since
    (0x001E, "ECS07",  "esme", True, SUPPLIER_ONLY, None),         # Manage Debt
    (0x0F00, "ECS07a", "esme", True, SUPPLIER_ONLY, "SECMP0002"),  # Reset Debt Register
    (0x00B3, "ECS04b", "esme", True, SUPPLIER_ONLY, None),         # Reset Meter Balance
    (0x0020, "ECS09",  "esme", True, SUPPLIER_ONLY, None),         # Activate Emergency Credit
    (0x006E, "GCS04",  "gsme", True, SUPPLIER_ONLY, None),         # Manage Debt
    (0x0F01, "GCS04a", "gsme", True, SUPPLIER_ONLY, "SECMP0002"),  # Reset Debt Register
    (0x00B4, "GCS40b", "gsme", True, SUPPLIER_ONLY, None),         # Reset Prepayment Mode Meter Balance on the GSME
    (0x0070, "GCS06",  "gsme", True, SUPPLIER_ONLY, None),         # Activate Emergency Credit
    # SR 4.3 and 1.6 (NOTES.md section 7): every profile knows them
    (0x002D, "ECS19",  "esme", False, SUPPLIER_ONLY, None),        # Read ESME Prepayment Registers
    (0x001A, "ECS02",  "esme", True, SUPPLIER_ONLY, None),         # Set ESME Payment Mode to Credit
    (0x001B, "ECS03",  "esme", True, SUPPLIER_ONLY, None),         # ... to Prepayment
    (0x0075, "GCS14",  "gsme", False, SUPPLIER_ONLY, None),        # Read GSME Prepayment Registers
    (0x006C, "GCS02",  "gsme", True, SUPPLIER_ONLY, None),         # Set GSME Payment Mode to Credit
    (0x006D, "GCS03",  "gsme", True, SUPPLIER_ONLY, None),         # ... to Prepayment
)

# Use cases whose Responses carry the date-time field (0C + the meter clock as a COSEM
# date-time) in their General-Signing header, as RTDS shows for SR 1.6 and 4.3, with
# the clock status byte that ends it: FF (not specified), but 04 in GCS14's, which
# RTDS calls the "reliable GSME" case. The others' Responses have none (00).
DATED = {"ECS19": 0xFF, "ECS02": 0xFF, "ECS03": 0xFF, "GCS14": 0x04, "GCS02": 0xFF,
         "GCS03": 0xFF}

# Message codes of what the meter sends on its own.
ALERT_CRITICAL = 0x1000
ALERT_NON_CRITICAL = 0x1001


def find(code):
    """The row for a message code, or None."""
    for row in USE_CASES:
        if row[0] == code:
            return row
    return None


def known(row, releases):
    """Whether a meter whose profile knows these releases (its "releases" setting)
    knows use case `row`: the envelope refuses the others as unknown message codes,
    and the host will not send them unless forced."""
    return row[5] is None or row[5] in releases


def by_name(name):
    for row in USE_CASES:
        if row[1] == name:
            return row
    return None
