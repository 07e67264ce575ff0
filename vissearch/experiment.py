"""Fixed-setting renders from an experiment file: ``python -m vissearch render FILE --out DIR``.

An experiment has the run-config sections ``model``, ``target`` and ``render``, and optionally
``runs``: a list of ``{name, target, render}`` overrides rendered one after another (the blog's
per-layer table is one file). Each run writes ``NAME.png`` (the grid), ``NAME/`` with one PNG per
target, ``NAME/curves.csv`` and ``NAME/summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vissearch import recipes, runconfig
from vissearch.engine.render import RenderResult, render
from vissearch.errors import UserError
from vissearch.imageio import write_png
from vissearch.models import labels
from vissearch.models import resolve as models
from vissearch.settings import yamlfile
from vissearch.settings.config import Experiment, RenderSettings, TargetSpec, merged, parse


def load(path: str | Path) -> Experiment:
    """Read an experiment file (sections model, target, render, optional runs); class names in
    the target become numbers. A ``render:`` that names a recipe or a stored trial keeps that
    source, resolved for each run's own target by :func:`expand_runs`."""
    raw = yamlfile.read(path)
    render = raw.get("render")
    if isinstance(render, dict) and any(k in render for k in recipes.SOURCE_KEYS):
        explicit = {k: v for k, v in render.items() if k not in recipes.SOURCE_KEYS}
        raw = {**raw, "render": explicit, "settings_from": render}
    exp = parse(Experiment, raw, where=str(path))
    model = runconfig.resolve_paths(exp.model, Path(path).parent, str(path))
    target = labels.resolve_target(exp.target, model, where=str(path))
    return exp.model_copy(update={"target": target, "model": model})


def _settings(exp: Experiment, target: TargetSpec, run_render: dict, where: str,
              base: Path | None) -> tuple[RenderSettings, dict]:
    """A run's settings: its recipe's or trial's (if the file names one), the file's render:
    on top, the run's own on top of those; and where they came from."""
    if not exp.settings_from:
        return merged(exp.render, run_render, where=where), {}
    values, came = recipes.expand({**exp.settings_from, **run_render}, exp.model, target,
                                  where, base)
    if came.get("note"):
        print(f"{where}: {came['note']}")
    return parse(RenderSettings, values, where=f"{where}: render"), came


def expand_runs(exp: Experiment, where: str = "") -> list[tuple]:
    """(name, target, settings, where the settings came from) for each run; an experiment
    without runs is one run."""
    base = Path(where).parent if where else None
    if not exp.runs:
        return [("render", exp.target, *_settings(exp, exp.target, {}, where, base))]
    out = []
    for i, run in enumerate(exp.runs):
        unknown = set(run) - {"name", "target", "render"}
        if unknown:
            raise UserError(f"{where}: runs[{i}] has unknown keys {sorted(unknown)}; "
                            "valid: name, target, render")
        name = str(run.get("name", f"run{i}"))
        target = labels.resolve_target(
            merged(exp.target, run.get("target", {}), where=f"{where}: runs[{i}]"),
            exp.model, where=f"{where}: runs[{i}]")
        settings, came = _settings(exp, target, run.get("render", {}), f"{where}: runs[{i}]",
                                   base)
        out.append((name, target, settings, came))
    return out


def render_file(path: str, out: str, only: str | None = None) -> list[RenderResult]:
    exp = load(path)
    runs = expand_runs(exp, where=path)
    if only is not None:
        runs = [r for r in runs if r[0] == only]
        if not runs:
            raise UserError(f"--only {only!r}: no run of that name in {path}")
    cache: dict[bool, models.LoadedModel] = {}
    results = []
    for name, target, settings, came in runs:
        with_top = target.kind == "class"
        if with_top not in cache:
            cache[with_top] = models.load_for(exp.model, target)
        result = render_with_progress(cache[with_top], target, settings, desc=name)
        write_result(result, Path(out), name, came)
        best = ", ".join(f"{result.indices[i]}:{result.activations[i]:.3g}"
                         for i in result.ranking()[:4])
        print(f"{name}: {len(result.indices)} targets, {result.dead.sum()} dead, "
              f"{result.failed.sum()} failed, {result.seconds:.1f}s; best {best} "
              f"-> {out}/{name}.png")
        results.append(result)
    return results


def step_bar(total: int, desc: str, disable: bool = False):
    """A tqdm bar over ``total`` steps and the window callback that moves it (it only watches:
    the images do not depend on it; members of a population may all report the same step)."""
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, disable=disable)

    def on_window(step: int, values: np.ndarray) -> bool:
        bar.update(max(min(step, total) - bar.n, 0))
        bar.set_postfix(act=f"{float(np.nanmean(values)):.3g}")
        return False

    return bar, on_window


def render_with_progress(loaded, target, settings, desc: str = "render") -> RenderResult:
    """Render with a tqdm bar over image-steps (updated once per reporting window)."""
    chunks = -(-len(target.indices) // settings.batch_size)
    bar, on_window = step_bar(chunks * settings.total_steps * settings.candidates, desc)
    try:
        return render(loaded, target, settings, callback=on_window)
    finally:
        bar.close()


def write_result(result: RenderResult, out: Path, name: str, came: dict | None = None) -> None:
    """The grid, one PNG per target, the loss curves and a summary (with where the settings
    came from, when a recipe or a stored trial gave them)."""
    folder = out / name
    images = result.pngs()
    write_png(out / f"{name}.png", result.grid_image(images))
    for idx, img in zip(result.indices, images, strict=True):
        write_png(folder / f"target_{idx:04d}.png", img)
    header = ",".join(f"t{i}" for i in result.indices)
    np.savetxt(folder / "curves.csv", result.curves, delimiter=",", header=header, comments="")
    summary = {
        "indices": result.indices,
        "activations": [float(a) for a in result.activations],
        "dead": [int(i) for i, d in zip(result.indices, result.dead, strict=True) if d],
        "failed": [int(i) for i, f in zip(result.indices, result.failed, strict=True) if f],
        "ranking": [result.indices[i] for i in result.ranking()],
        "steps_run": result.steps_run,
        "seconds": round(result.seconds, 2),
        "settings": result.settings.model_dump(),
        "settings_from": came or {},
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
