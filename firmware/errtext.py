# The texts of the firmware's errors: why a Command is refused (envelope.py) and what
# is wrong with malformed content (the codecs and the handlers). Each table is one
# string of "|"-separated fields in the order of its module's _W_* / _E_* numbers
# (link.field finds one), formatted with the error's values.
#
# Loaded only when an error is raised, through onecall, and dropped after it: a
# Command that goes well holds none of these texts, which on a 64-bit port are a
# fifth of the heap the ESME handler and its codec take.
import link

# envelope.py _W_*
ENVELOPE = ("malformed MAC header or General-Signing APDU|not a signed Command|"
            "meter not provisioned|recipient is not this meter|unknown message code %04X|"
            "originator %s may not run %s|originator counter %d not above the last accepted|"
            "no ACB provisioned|MAC does not verify|signature does not verify|"
            "a non-critical Command carries no signature|"
            "originator %s has no KA key to protect the Response with")

# gbz.py _E_*
GBZ = ("not GBZ content|bad component count %d|component %d truncated|"
       "component %d: bad control byte %02x|component %d: length %d lies|"
       "component %d: frame control %02x|%d trailing bytes|Change Debt truncated|"
       "Change Debt length does not match its label|Change Debt field out of range|"
       "Credit Adjustment length %d|Credit Adjustment type %d|"
       "Select Emergency Credit length %d|originating device %d")

# gsme.py _E_*
GSME = ("%s takes exactly one component|component %04x/%02x is not %s|"
        "recovery method does not match the debt register|absolute debt amount below zero|"
        "a reset takes amount 0, absolute type, recovery fields 0")

# dlms.py _E_*
DLMS = ("length truncated|bad length encoding|data truncated|"
        "array or structure too deep or too long|unknown A-XDR tag %02x|"
        "not a DLMS Access-Request|date-time must be absent|bad specification count %d|"
        "specification %d truncated|specification %d: unknown kind %02x|"
        "%d data for %d specifications|%d trailing bytes|"
        "expected A-XDR tag %02x, got %02x|unit_charge: expected A-XDR tag %02x, got %02x|"
        "unit_charge: unexpected data shape|unit_charge shape")

# esme.py _E_*
ESME = ("object %d not known here|charge per unit out of range|%s takes exactly one action|"
        "period must be 3600 or 86400|proportion above 100 %%|"
        "activate_passive_unit_charge takes 0|a reset sets the amount to 0|"
        "credit amount below zero|invoke_credit takes 0|specification %d is not part of %s")

# esmepay.py, gsmepay.py: the reads' _E_*
READ = "not a %s request"

# esmepay.py, gsmepay.py: the payment modes' _E_*
MODE = ("class %d attribute %d is not part of %s|payment mode does not match %s|"
        "future-dated payment mode changes are not supported|"
        "%s takes one Change Payment Mode component|Change Payment Mode length %d")


def text(table, i, args=()):
    """Text i of the named table, formatted with args."""
    return link.field(globals()[table], i) % args
