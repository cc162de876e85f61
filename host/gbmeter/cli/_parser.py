"""The command line's parser: verb discovery, gbmeter's argparse (usage errors exit
64, the exit code table under every verb's help). Imported by main() inside its
Ctrl-C guard, so an early Ctrl-C never ends in a traceback."""

import argparse
import importlib
import pkgutil
import re
import sys
from pathlib import Path

import gbmeter
from gbmeter import paths

PACKAGE = "gbmeter.cli"
HERE = str(Path(__file__).resolve().parent)


def verbs():
    """Verb name -> module, from this package's modules (reset_debt -> reset-debt)."""
    return {m.name.replace("_", "-"): f"{PACKAGE}.{m.name}"
            for m in pkgutil.iter_modules([HERE]) if not m.name.startswith("_")}


USAGE_EXIT = 64        # sysexits EX_USAGE: argparse's own 2 is "a Command failed" here

EXIT_CODES = """exit codes:
  0    success (for a Command: the Response verified and every part succeeded)
  1    error: bad input, keys, port or board; said in plain words
  2    the Command was sent and failed: the meter refused it (alert) or a part
       of its Response did not succeed, or its Response does not verify
  3    the DCC stopped it: quarantined or not correlated; nothing was sent
  4    the meter's profile does not know the use case; nothing was sent
  5    outcome unknown: a Command or a changing diagnostic was sent and no answer
       read (check with `gbmeter registers`)
  64   usage error: bad or missing options
  130  interrupted (Ctrl-C); what was sent and not answered is named"""


class HelpFormatter(argparse.HelpFormatter):
    """Paragraphs are filled as usual; lines that start with a space are kept as
    written (the exit code table)."""

    def _fill_text(self, text, width, indent):
        out = []
        for line in text.splitlines() or [""]:
            if line.startswith(" ") or not line.strip():
                out.append(indent + line)
            else:
                out.append(super()._fill_text(line, width, indent))
        return "\n".join(out)


class Parser(argparse.ArgumentParser):
    """argparse with gbmeter's usage exit code (64) and the exit code table under
    every verb's help. Verb parsers are made of this class too."""

    def __init__(self, *args, **kw):
        kw.setdefault("epilog", EXIT_CODES)
        kw.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kw)

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(USAGE_EXIT, f"{self.prog}: error: {message}\n")


def usage(parser):
    """A verb given no action: its help on stderr, usage exit code."""
    parser.print_help(sys.stderr)
    return USAGE_EXIT


def firmware_version():
    """The VERSION the firmware of this checkout reports in ping."""
    m = re.search(r'^VERSION = "([^"]+)"', (paths.FIRMWARE / "appdiag.py").read_text(), re.M)
    return m.group(1) if m else "?"


def build_parser(only=None):
    """The parser; with `only`, just that verb's module is imported, so one verb starts
    fast and does not depend on the others."""
    p = Parser(
        prog="gbmeter",
        description="Drive gbmeter GSME/ESME test meters: virtual boards, GBCS "
                    "Commands, Service Requests and the DCC's checks.")
    p.add_argument("--version", action="version",
                   version=f"gbmeter {gbmeter.__version__} (firmware {firmware_version()})")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    table = verbs()
    for name in sorted(table):
        if only is None or name == only:
            importlib.import_module(table[name]).register(sub)
    return p
