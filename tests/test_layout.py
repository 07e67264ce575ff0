"""The shape of the code: imports flow one way, no module imports itself back, nothing grows
past the size where it should be split. A module's wing is its folder (ground modules named)."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "vissearch"

# The wings, from the ground up: each may import the wings listed for it (and itself). The
# TensorFlow side (models -> engine -> scoring) and the Optuna side (study) stand side by side on
# the settings, neither importing the other; the bridges and commands at the top join them.
GROUND = {"vissearch.errors", "vissearch.quiet", "vissearch.files", "vissearch.imageio"}
ALLOWED = {
    "ground": {"ground"},
    "settings": {"ground"},
    "models": {"ground", "settings"},
    "engine": {"ground", "settings", "models"},
    "scoring": {"ground", "settings", "models", "engine"},
    "study": {"ground", "settings"},
    "top": {"ground", "settings", "models", "engine", "scoring", "study"},
}
# What each wing must never load, even through another module.
BANNED = {"models": "optuna", "engine": "optuna", "scoring": "optuna",
          "study": "tensorflow", "settings": "tensorflow"}
# Top-level modules that stay light: the command line starts without TensorFlow.
LIGHT = ["vissearch", "vissearch.cli", "vissearch.commands", "vissearch.recipes",
         "vissearch.runconfig"]


def wing(module: str) -> str:
    if module in GROUND:
        return "ground"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "top"


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def loaded_after(names: list[str]) -> set[str]:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in names) +
            "print(' '.join(sorted(k.split('.')[0] for k in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_every_module_lives_in_a_wing_or_at_the_top():
    for name in modules():
        assert wing(name) in ALLOWED, name
    assert {wing(m) for m in modules()} == set(ALLOWED)


@pytest.mark.parametrize("name, banned", sorted(BANNED.items()))
def test_a_wing_never_loads_the_other_sides_framework(name, banned):
    members = [m for m in modules() if wing(m) == name]
    assert members and banned not in loaded_after(members)
    if banned == "tensorflow":
        assert "keras" not in loaded_after(members)


def test_the_command_line_starts_without_tensorflow():
    assert "tensorflow" not in loaded_after(LIGHT)


def import_graph() -> dict[str, set[str]]:
    """Module -> the vissearch modules it imports anywhere in its body (lazy imports too)."""
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                graph[name] |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    graph[name].add(full if full in mods else base)
        graph[name] &= set(mods) - {name}
    return graph


def test_wings_import_downwards_only():
    upward = [(m, n) for m, targets in import_graph().items() for n in targets
              if wing(n) != wing(m) and wing(n) not in ALLOWED[wing(m)]]
    assert not upward, upward


def test_pyproject_lists_every_package():
    import tomllib

    listed = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {m for m, p in modules().items() if p.name == "__init__.py"}
    assert found | {"vissearch.spaces"} == set(listed["packages"])


def test_no_import_cycles():
    graph, state, cycles = import_graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_no_module_over_400_lines_and_no_function_over_60():
    too_long = []
    for name, path in modules().items():
        text = path.read_text()
        if len(text.splitlines()) > 400:
            too_long.append((name, len(text.splitlines())))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    too_long.append((f"{name}.{node.name}", length))
    assert not too_long, too_long
