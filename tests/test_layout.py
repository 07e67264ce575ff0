"""The shape of the code: imports flow one way, no module imports itself back, nothing grows
past the size where it should be split. Every module of vissearch/ is classified here."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "vissearch"

# The study side never loads TensorFlow; the engine never loads Optuna; the bridges may load
# both (they turn Optuna trials into renders).
STUDY_SIDE = ["vissearch", "vissearch.engine", "vissearch.models", "vissearch.scoring",
              "vissearch.settings", "vissearch.study", "vissearch.cli", "vissearch.commands",
              "vissearch.settings.config",
              "vissearch.errors", "vissearch.files", "vissearch.engine.halving",
              "vissearch.imageio", "vissearch.models.labels", "vissearch.study.leaderboards",
              "vissearch.models.loaded", "vissearch.study.objectstore", "vissearch.quiet",
              "vissearch.scoring.readability", "vissearch.study.report", "vissearch.recipes",
              "vissearch.runconfig", "vissearch.scoring.scores", "vissearch.study.searchspace",
              "vissearch.engine.seeds", "vissearch.engine.spectrum", "vissearch.study.store",
              "vissearch.settings.validate", "vissearch.settings.yamlfile", "vissearch.models.zoo",
              "vissearch.models.zoo.torchfile", "vissearch.models.onnxnames"]
ENGINE = ["vissearch.engine.budget", "vissearch.scoring.evaluate", "vissearch.experiment",
          "vissearch.engine.hparams", "vissearch.models.resolve", "vissearch.engine.objectives",
          "vissearch.engine.optimizers", "vissearch.engine.param", "vissearch.engine.precision",
          "vissearch.engine.regularizers", "vissearch.engine.render", "vissearch.engine.step",
          "vissearch.engine.transforms", "vissearch.models.zoo.data",
          "vissearch.models.zoo.efficientnet", "vissearch.models.zoo.train",
          "vissearch.models.onnxconvert"]
BRIDGES = ["vissearch.__main__", "vissearch.apply", "vissearch.recovery", "vissearch.reproduce",
           "vissearch.runner", "vissearch.trials", "vissearch.tune"]


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


def test_every_module_is_classified_once():
    listed = STUDY_SIDE + ENGINE + BRIDGES
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(modules())


@pytest.mark.parametrize("names, banned", [(STUDY_SIDE, "tensorflow"), (ENGINE, "optuna")])
def test_import_direction(names, banned):
    assert banned not in loaded_after(names)


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
