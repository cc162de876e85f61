"""The host package's architecture, checked from its source: every import of a
gbmeter module goes down the layers (cli -> dcc -> supplier -> gbcs / board -> base),
never up or sideways between gbcs and board, and no group of modules imports itself
in a circle. Imports inside functions count too: a lazy upward import is still one."""

import ast
from pathlib import Path

import pytest

import gbmeter

PACKAGE = Path(gbmeter.__file__).parent

# layer of each top-level part of the package; a higher number may import a lower
LAYERS = {"errors": 0, "paths": 0, "profiles": 0, "__init__": 0,
          "gbcs": 1, "board": 1, "supplier": 2, "dcc": 3, "cli": 4, "__main__": 5}


def module_name(path):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules():
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path, known):
    """The gbmeter modules a source file imports (from X import name counts the
    submodule X.name when that is a module, else X)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("gbmeter"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gbmeter"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return out


def part(name):
    bits = name.split(".")
    return bits[1] if len(bits) > 1 else "__init__"


def layer(name):
    return LAYERS[part(name)]


def graph():
    mods = modules()
    return {name: imports(path, mods) & set(mods) - {name} for name, path in mods.items()}


def test_every_part_of_the_package_has_a_layer():
    assert {part(m) for m in modules()} <= set(LAYERS), "add the new folder to LAYERS"


def test_imports_only_go_down():
    bad = []
    for name, deps in graph().items():
        for dep in deps:
            if part(dep) == part(name) or layer(dep) == layer(name) == 0:
                continue    # within one folder, or among the base modules
            if layer(dep) >= layer(name):
                bad.append(f"{name} imports {dep}")
    assert not bad, "upward or sideways imports:\n" + "\n".join(sorted(bad))


def test_no_import_circles():
    g = graph()
    state, stack, circles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for d in sorted(g[n]):
            if state.get(d) == "open":
                circles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[n] = "done"

    for n in sorted(g):
        if n not in state:
            visit(n)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_checks_catch_what_they_are_for(tmp_path, monkeypatch):
    """The same checks on a made-up package with an upward import and a circle."""
    pkg = tmp_path / "gbmeter"
    for sub in ("gbcs", "cli", "dcc"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "gbcs" / "a.py").write_text("from gbmeter.cli import b\n")
    (pkg / "cli" / "b.py").write_text("import gbmeter.dcc.c\n")
    (pkg / "dcc" / "c.py").write_text("def f():\n    from gbmeter.gbcs import a\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="gbmeter.gbcs.a imports gbmeter.cli.b"):
        test_imports_only_go_down()
    with pytest.raises(AssertionError, match="circles"):
        test_no_import_circles()


def test_test_file_names_are_unique():
    """pytest imports test files by their base name: two test_x.py in different
    folders stop the whole collection, so the mirrored folders must not repeat one."""
    tests = Path(__file__).resolve().parents[1]
    names = [p.name for p in tests.rglob("*.py") if p.name != "conftest.py"]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
