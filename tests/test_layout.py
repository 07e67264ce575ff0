"""Imports flow one way: the study side never loads TensorFlow, the engine never loads Optuna."""

import subprocess
import sys

import pytest


def loaded_after(modules: list[str]) -> set[str]:
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print(' '.join(sorted(k.split('.')[0] for k in sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("modules, banned", [
    (["vissearch", "vissearch.config", "vissearch.searchspace", "vissearch.imageio",
      "vissearch.leaderboards", "vissearch.runconfig", "vissearch.store", "vissearch.scores",
      "vissearch.cli"], "tensorflow"),
    (["vissearch.render", "vissearch.objectives", "vissearch.transforms", "vissearch.param",
      "vissearch.models"], "optuna"),
])
def test_import_direction(modules, banned):
    assert banned not in loaded_after(modules)
