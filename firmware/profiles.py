# Device profiles: the kinds of meter a board can be, as data. A profile is a row of
# named settings; the handlers read the settings (copied into the meter's state at
# provisioning), never the profile's name, so a profile is never a fork in the code.
# The host reads this same file (gbmeter.profiles), as it reads usecases.py.
# Plain MicroPython- and CPython-compatible data; loaded only while a meter is made
# or provisioned, never for a Command.
#
# Settings: name, the clause it comes from, the values it takes (first = SMETS2's).
# What each profile is, in words, and the listing live on the host (gbmeter.profiles):
# this module is kept to what a board needs, as it loads into a small heap.
#   releases        use-case releases the meter knows: the `since` column of
#                   usecases.py. A Command of a release the meter does not know is an
#                   unknown message code (alert 8F1E), as on an older meter.
#   whole_pence     money values the meter accepts (debt amounts, recovery rates,
#                   balance adjustments, top-ups) are truncated towards zero to whole
#                   pence (multiples of 1000 units) before they are applied, so every
#                   value it reports afterwards is the truncated one.
#   ec_zero_limit   activating emergency credit with an emergency credit limit of 0:
#                   "activate" (SMETS2 offers emergency credit by the threshold alone:
#                   it is in use with nothing available) or "fail" (it cannot be
#                   activated; ECS09 / GCS06 answer failure).
#   ec_amount       what activating emergency credit makes available: "limit" (the
#                   whole limit) or "limit-less-debt" (the limit, out of which the
#                   accumulated debt is paid first).
#   balance_adjust  meter balance adjustments (GCS40b, ECS04b): "as-sent" (absolute and
#                   incremental) or "incremental-only" (an absolute adjustment or a
#                   set-to-value answers failure).
# The consultation names S1SR's clauses but not their figures (NOTES.md section 6):
# where it does not say what a SMETS1 Secure meter does, its default is SMETS2's and
# a board can be provisioned with the other value (`gbmeter provision --setting`).
# S1SR 18.4 (changing to prepayment), 18.37 (load limit), 18.62 (join time) and 18.63
# (firmware update) touch no use case of this project, so they are not settings.

SETTINGS = (
    # name             clause                 values
    ("releases",       "SECMP0002",           None),   # a list, set by the profile only
    ("whole_pence",    "S1SR 18.16, 18.27",   (False, True)),
    ("ec_zero_limit",  "S1SR 18.5",           ("activate", "fail")),
    ("ec_amount",      "S1SR 18.8",           ("limit", "limit-less-debt")),
    ("balance_adjust", "S1SR 18.3",           ("as-sent", "incremental-only")),
)

PROFILES = (
    # name, the settings that differ from SMETS2's (the first value of each)
    ("smets2", {}),                                                # the default
    ("smets2-pre", {"releases": []}),                              # before SECMP0002
    ("smets1-secure", {"whole_pence": True, "ec_zero_limit": "fail"}),
)


def settings(profile, overrides=None):
    """The settings of a profile with `overrides` ({name: value}) applied, as a fresh
    dict; ValueError names an unknown profile, setting or value."""
    diff = None
    for p in PROFILES:
        if p[0] == profile:
            diff = p[1]
    if diff is None:
        raise ValueError("unknown profile %s" % profile)
    out = {"releases": list(diff.get("releases", ("SECMP0002",)))}
    for name, _, values in SETTINGS[1:]:
        v = diff.get(name, values[0])
        if overrides and name in overrides:
            v = overrides[name]
            if v not in values or type(v) is not type(values[0]):
                raise ValueError("setting %s takes %s" % (name, " or ".join(map(str, values))))
        out[name] = v
    for name in overrides or ():
        if name == "releases":
            raise ValueError("setting releases is set by the profile: choose the profile")
        if name not in out:
            raise ValueError("unknown setting %s" % name)
    return out
