"""Device profiles on the host: the firmware's own table (firmware/profiles.py), the
`--setting NAME=VALUE` parser, and the check that stops a Command a meter's profile
does not know from being sent (unless forced, for negative testing)."""

from gbmeter import paths
from gbmeter.errors import UserError

_BOOL = {"true": True, "yes": True, "on": True, "1": True,
         "false": False, "no": False, "off": False, "0": False}


def table():
    return paths.firmware_table("profiles")


# What each profile of the firmware's table is, in words.
DESCRIPTIONS = {
    "smets2": "SMETS2 meter on the release that brings SECMP0002 (the default)",
    "smets2-pre": "SMETS2 meter from before SECMP0002: no reset use cases",
    "smets1-secure": "SMETS1 Secure meter (S1SR): whole pence, no emergency credit at a "
                     "zero limit",
}
DEFAULT = "smets2"


def names():
    return [p[0] for p in table().PROFILES]


def knows(settings, use_case):
    """Whether a meter with these settings knows a use case (a usecases row): the
    firmware's own rule, usecases.known, which its envelope asks too."""
    return paths.firmware_table("usecases").known(use_case, settings["releases"])


def settings(profile, overrides=None):
    """A profile's settings with overrides; plain-word UserError when bad."""
    try:
        return table().settings(profile, overrides)
    except ValueError as e:
        raise UserError(str(e)) from None


def parse_settings(texts):
    """["NAME=VALUE", ...] -> {name: value}, values typed as the table's (true/false
    for yes/no settings). Unknown names and values are left for settings() to name."""
    out = {}
    kinds = {s[0]: s[2] for s in table().SETTINGS}
    for text in texts or ():
        name, eq, value = text.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name:
            raise UserError(f"--setting {text!r}: write it as NAME=VALUE")
        values = kinds.get(name)
        if values and isinstance(values[0], bool):
            if value.lower() not in _BOOL:
                raise UserError(f"setting {name} takes true or false, not {value!r}")
            out[name] = _BOOL[value.lower()]
        else:
            out[name] = value
    return out


def meter_settings(hello):
    """The settings a meter reports (ping), or its profile's from the table."""
    if isinstance(hello.get("settings"), dict):
        return hello["settings"]
    return settings(hello.get("profile") or DEFAULT)


def check_known(hello, use_case, force=False):
    """Refuse (UserError, exit 4) to send use case `use_case` (a usecases row) to the
    meter that answered `hello`, when its profile does not know it: the meter would
    treat it as an unknown message code (alert 8F1E) and change nothing."""
    if force or knows(meter_settings(hello), use_case):
        return
    raise UserError(
        f"the meter {hello.get('id', '')} is a {hello.get('profile')} meter, which does not "
        f"know {use_case[1]} ({use_case[5]}): it would answer alert 8F1E and change "
        "nothing. Nothing was sent; --force sends it anyway (negative testing)",
        exit_code=4)


def rows():
    """[(profile, what it is, {setting: value})] for listing."""
    return [(p[0], DESCRIPTIONS.get(p[0], ""), settings(p[0])) for p in table().PROFILES]


def text(settings):
    """Settings in plain words: 'releases SECMP0002, whole_pence true, ...'."""
    def word(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "+".join(v) or "none"
        return str(v)
    order = [s[0] for s in table().SETTINGS]
    names = sorted(settings, key=lambda k: order.index(k) if k in order else len(order))
    return ", ".join(f"{k} {word(settings[k])}" for k in names)
