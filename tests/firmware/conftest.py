"""Collects tests/firmware/fw_*.py and runs them inside the MicroPython unix port:
one process per module, each test function reported as its own pytest item."""

import os
import subprocess

import pytest

from gbmeter import paths

_results = {}


def _run_module(path, tmp):
    key = str(path)
    if key in _results:
        return _results[key]
    env = dict(os.environ)
    shared = paths.shared()
    if shared:
        env["GBMETER_SHARED"] = str(shared)
    else:
        env.pop("GBMETER_SHARED", None)
    env["GBMETER_TMP"] = str(tmp)
    heap = "8M"
    for line in path.read_text().splitlines()[:20]:
        if line.startswith("# micropython-heap:"):
            heap = line.split(":", 1)[1].strip()
    cmd = [paths.micropython(), "-X", f"heapsize={heap}",
           str(path.parent / "runner.py"), str(paths.FIRMWARE), path.stem]
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=900)
    results, out = {}, []
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT "):
            _, name, outcome, ms, *msg = line.split(" ", 4)
            results[name] = (outcome, int(ms), " ".join(msg), "\n".join(out))
            out = []
        elif line != "@@DONE":
            out.append(line)
    done = "@@DONE" in proc.stdout
    _results[key] = (results, done, proc.stdout + proc.stderr)
    return _results[key]


def _is_firmware_test(path):
    return path.name.startswith("fw_") and path.suffix == ".py"


def pytest_collect_file(parent, file_path):
    # Files named on the command line go through pytest_pycollect_makemodule instead.
    if _is_firmware_test(file_path) and not parent.session.isinitpath(file_path):
        return FirmwareModule.from_parent(parent, path=file_path)


def pytest_pycollect_makemodule(module_path, parent):
    if _is_firmware_test(module_path):
        return FirmwareModule.from_parent(parent, path=module_path)


class FirmwareModule(pytest.File):
    def collect(self):
        for line in self.path.read_text().splitlines():
            if line.startswith("def test_"):
                name = line[4:].split("(", 1)[0]
                yield FirmwareTest.from_parent(self, name=name)


class FirmwareTest(pytest.Item):
    def runtest(self):
        tmp = self.config._tmp_path_factory.mktemp(self.parent.path.stem)
        results, done, raw = _run_module(self.parent.path, tmp)
        if self.name not in results:
            why = "module crashed" if not done else "test not run"
            raise FirmwareFailure(f"{why} in the unix port:\n{raw[-4000:]}")
        outcome, ms, msg, out = results[self.name]
        if out:
            print(out)
        if outcome == "skip":
            pytest.skip(msg)
        if outcome == "fail":
            raise FirmwareFailure(f"{msg}\n{out}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, FirmwareFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, f"micropython: {self.name}"


class FirmwareFailure(Exception):
    pass
