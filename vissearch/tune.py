"""A recipe found by search, layer by layer: ``python -m vissearch tune CONFIG --out DIR``.

A tune config is a run config with a ``tune:`` section::

    tune:
      layers: [block1_conv1, block2_conv1]   # or auto: the block outputs, at most max_layers
      max_layers: 8
      warm_top: 3        # each layer's study starts from the best 3 trials of the layer before

One small study runs per layer (``STUDY-LAYER``, populations and halving as the config says),
each warm-started from the best trials of the layer below it, so the search walks up the network
the way the blog's table was made by hand. The output folder gets ``recipe.yaml`` (each layer's
best settings and where they came from), ``grids/LAYER.png`` (the best trial's grid) and
``table.md`` / ``table.csv`` (layer x settings x scores). Class targets have one entry.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from pydantic import Field

from vissearch import files, recipes, runconfig, runner
from vissearch.errors import UserError
from vissearch.models import resolve as models
from vissearch.settings import yamlfile
from vissearch.settings.config import ModelSpec, RenderSettings, _Frozen, parse
from vissearch.study import store

BLOCK_LAYERS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Add", "ReLU", "Activation",
                "Concatenate", "BatchNormalization")
TABLE_SETTINGS = ("lr", "optimizer", "normalize_grad", "median_size", "median_every",
                  "blur_sigma", "blur_every", "decay", "param", "jitter", "tv", "keep")
SHOWN = ("lr", "median_size", "median_every", "blur_sigma", "blur_every", "decay")  # defaults too


class TuneSpec(_Frozen):
    layers: list[str] | Literal["auto"] = "auto"
    max_layers: int = Field(8, ge=1, le=64)
    warm_top: int = Field(3, ge=0, le=100)


def block_outputs(model, max_layers: int) -> list[str]:
    """The output of each block (a layer named ``*_out``, else the last convolution-like layer
    of each name prefix ``blockN``), evenly sampled to ``max_layers``, first and last kept."""
    rows = [r for r in models.layer_table(model) if r[3] is not None and r[1] in BLOCK_LAYERS]
    names = [r[0] for r in rows if r[0].endswith("_out")]
    if not names:
        last: dict[str, str] = {}
        for name, *_ in rows:
            last[name.split("_")[0]] = name
        names = list(last.values())
    if len(names) > max_layers:
        picks = np.unique(np.linspace(0, len(names) - 1, max_layers).round().astype(int))
        names = [names[i] for i in picks]
    return names


def _layer_config(raw: dict, layer: str | None, previous: str | None, warm_top: int
                  ) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    study = out["study"]
    if layer and isinstance(study.get("name"), str):  # a missing name is the run config's error
        study["name"] = f"{study['name']}-{layer}"
    if layer:
        out["target"] = {**out["target"], "layer": layer}
    if previous and warm_top:
        study["warm_start"] = {"study": previous, "top": warm_top,
                               "storage": study.get("storage"),
                               "results": study.get("results", "results")}
    return out


class Plan(NamedTuple):
    raw: dict[str, Any]  # the run config without its tune: section
    spec: TuneSpec
    model_spec: ModelSpec
    kind: str  # the target's kind
    names: list[str]  # the model's layers in order
    layers: list[str | None]  # those to tune (one None for classes)
    configs: list[runconfig.RunConfig]  # each layer's run config, before any warm start


def plan(path: str, storage: str | None = None) -> Plan:
    """Read and check a tune config: every layer's mistake is one line before any study runs."""
    raw = dict(yamlfile.read(path))
    spec = parse(TuneSpec, raw.pop("tune", {}) or {}, where=f"{path}: tune")
    for section in ("study", "model", "target"):
        if not isinstance(raw.get(section), dict):
            raise UserError(f"{path}: a tune config needs a {section}: section (a mapping), as "
                            "a run config does")
    if storage:
        raw["study"] = {**raw["study"], "storage": storage}
    model_spec = runconfig.resolve_paths(parse(ModelSpec, raw["model"], where=f"{path}: model"),
                                         Path(path).parent, path)
    kind = raw["target"].get("kind", "filter")
    names, layers = _layers(model_spec, kind, spec, path)
    configs = [runconfig.from_mapping(_layer_config(raw, layer, None, 0), path)
               for layer in layers]
    return Plan(raw, spec, model_spec, kind, names, layers, configs)


def tune(path: str, out: str, progress: bool = True, storage: str | None = None,
         into: str | None = None) -> Path:
    """Run the per-layer studies of a tune config and write its recipe, grids and table; with
    ``into``, the recipe goes there, replacing only the entries of the layers tuned now."""
    start = time.perf_counter()
    raw, spec, model_spec, kind, names, layers, configs = plan(path, storage)
    model = model_spec.model_dump(exclude_defaults=True)
    folder, target = _outputs(out, into, model)
    entries, rows, previous = [], [], None
    for i, (layer, cfg) in enumerate(zip(layers, configs, strict=True)):
        if previous:
            cfg = runconfig.from_mapping(_layer_config(raw, layer, previous, spec.warm_top), path)
        print(f"tune {i + 1}/{len(layers)}: {layer or 'classes'} (study {cfg.study.name})",
              flush=True)
        study = runner.run(cfg, progress=progress)
        seconds = _wall_seconds(study)
        best = store.preferred(study)  # readers' figures, where there are any, come first
        if not best:
            print(f"  no completed trial for {layer}; left out of the recipe")
            continue
        entry = recipes.entry_from_trial(best[0], kind, layer, cfg.study.name,
                                         cfg.study.objectives)
        entries.append(entry)
        rows.append(_row(entry, layer, seconds))
        grid = store.trial_file(study, best[0].user_attrs.get("images", {}), "grid")
        if grid is not None:
            (folder / "grids").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(grid, folder / "grids" / f"{layer or 'classes'}.png")
        previous = cfg.study.name
    about = (f"found by python -m vissearch tune {path}: per layer the best trial by "
             f"{', '.join(configs[0].study.objectives)}")
    recipe = recipes.write(target, model, about, names, _merged(target, model, entries))
    _tables(folder, rows)
    total = time.perf_counter() - start
    studies = sum(r["minutes"] for r in rows)
    print(f"tune: {len(entries)} of {len(layers)} layers; their studies ran {studies:.1f} min, "
          f"this command {total / 60:.1f} min -> {recipe}")
    return recipe


def _layers(model_spec: ModelSpec, kind: str, spec: TuneSpec, path: str
            ) -> tuple[list[str], list[str | None]]:
    """The model's layer names in order, and the layers to tune (one None for classes)."""
    loaded = models.load(model_spec, with_classifier=kind == "class")
    names = [layer.name for layer in loaded.model.layers
             if type(layer).__name__ != "InputLayer"]  # its name counts Keras's inputs
    if kind == "class":
        return names, [None]
    if spec.layers == "auto":
        return names, list(block_outputs(loaded.model, spec.max_layers))
    if not spec.layers:
        raise UserError(f"{path}: tune.layers is empty; list the layers to tune (python -m "
                        "vissearch layers lists them) or write auto")
    unknown = [n for n in spec.layers if n not in names]
    if unknown:
        raise UserError(f"{path}: tune.layers: {loaded.label} has no layer {unknown[0]!r}; "
                        "python -m vissearch layers lists them")
    return names, list(spec.layers)


def _outputs(out: str, into: str | None, model: dict) -> tuple[Path, Path]:
    """The output folder and the recipe's path, checked before any study runs: both writable,
    and a recipe already at ``into`` one for this model."""
    folder = files.check_writable(out, "--out", folder=True)
    if into is None:
        return folder, folder / "recipe.yaml"
    target = files.check_writable(into, "--recipe", folder=False)
    _merged(target, model, [])
    return folder, target


def _merged(path: Path, model: dict, entries: list[dict]) -> list[dict]:
    """``entries`` after those of the recipe at ``path`` (if any) that they do not replace."""
    if not path.is_file():
        return entries
    old = recipes.load(path)
    if old.model != model:
        raise UserError(f"--recipe {path} is a recipe for {old.model}, not {model}")
    new = {(e["kind"], e["layer"]) for e in entries}
    kept = [e.model_dump() for e in old.entries if (e.kind, e.layer) not in new]
    return kept + entries


def _wall_seconds(study) -> float:
    """The study's wall time, first trial start to last trial end (a resumed, finished study
    keeps the time it took when it ran)."""
    times = [(t.datetime_start, t.datetime_complete) for t in study.get_trials(deepcopy=False)
             if t.datetime_start and t.datetime_complete]
    if not times:
        return 0.0
    return (max(end for _, end in times) - min(start for start, _ in times)).total_seconds()


def _row(entry: dict, layer: str | None, seconds: float) -> dict[str, Any]:
    render = {**RenderSettings().model_dump(), **entry["render"]}
    row: dict[str, Any] = {"layer": layer or "classes"}
    for k in TABLE_SETTINGS:
        if k in entry["render"] or k in SHOWN:
            row[k] = render[k]
    row["median_every"] = row.get("median_every") if render["median_size"] else None
    row["blur_every"] = row.get("blur_every") if render["blur_sigma"] else None
    row.update(entry["source"]["scores"])
    row.update({"trial": entry["source"]["trial"], "minutes": round(seconds / 60, 2)})
    return row


def _tables(folder: Path, rows: list[dict[str, Any]]) -> None:
    df = pd.DataFrame(rows)
    if (folder / "table.csv").is_file():  # a table of other layers, written by an earlier tune
        old = pd.read_csv(folder / "table.csv")
        df = pd.concat([old[~old["layer"].isin(df["layer"])], df], ignore_index=True)
    first = ["layer", *(k for k in TABLE_SETTINGS if k in df.columns)]
    df = df[first + [c for c in df.columns if c not in first]]
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "table.csv", index=False)
    shown = df.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else
                   f"{v:.3g}" if isinstance(v, float) else v)
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in shown.fillna("").values]
    (folder / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
