"""Recipes: settings known to render a model's layers well, and where each came from. No
TensorFlow.

A recipe is a YAML file (``python -m vissearch tune`` writes them; vissearch ships some in
``vissearch/recipes/``)::

    recipe: 1
    model: {name: VGG16, weights: hed}
    about: what the entries were ranked by
    layers: [block1_conv1, block1_conv2, ...]     # the model's layers in order
    entries:
      - kind: filter
        layer: block3_conv1
        render: {lr: 6.2, median_size: 3, median_every: 6, ...}
        source: {study: tune-vgg16-block3_conv1, trial: 11, scores: {...}, made: 2026-12-01}
      - {kind: class, render: {...}, source: {...}}

A config's ``render:`` takes settings from one (``render: {recipe: vgg16-hed, size: 256}``,
the fixed settings on top) or from a stored trial (``render: {study: NAME, trial: best}``):
:func:`expand` turns either into plain settings and a line that says where they came from.
The entry for the target's layer is used, or else the nearest layer above it in the model.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from vissearch import files
from vissearch.errors import UserError, closest, shorten
from vissearch.files import check_path
from vissearch.settings import yamlfile
from vissearch.settings.config import (
    ModelSpec,
    RenderSettings,
    TargetSpec,
    _Frozen,
    changed,
    parse,
)
from vissearch.settings.studyspec import StudySpec, safe_name

SHIPPED = Path(__file__).parent / "recipes"
# a model -> the shipped recipe of its family (the first is its own where the name matches)
FAMILIES = {"VGG16": "vgg16-hed", "VGG19": "vgg16-hed", "zoo/shapes": "shapes",
            "zoo/efficientnet-lite0": "efficientnet-lite0",
            "zoo/efficientnet-lite2": "efficientnet-lite2"}
SOURCE_KEYS = ("recipe", "study", "trial", "storage", "results")  # render: keys naming a source
STUDY_KEYS = ("study", "trial", "storage", "results")
KINDS = ("filter", "layer", "class")


class Entry(_Frozen):
    kind: Literal["filter", "layer", "class"]
    layer: str | None = None
    render: dict[str, Any]
    source: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _layer(self) -> Entry:
        if self.kind != "class" and not self.layer:
            raise ValueError(f"a {self.kind} entry names its layer")
        parse(RenderSettings, self.render, where=f"entry {self.layer or self.kind}: render")
        return self


class Recipe(_Frozen):
    recipe: Literal[1] = 1
    model: dict[str, Any]
    about: str = ""
    layers: list[str] = Field(default_factory=list)
    entries: list[Entry]


class WarmStart(_Frozen):
    """``study.warm_start``: the best ``top`` trials of another study, or a recipe's entry, run
    before the sampler's own draws. The study is looked for where the config's own study lives
    (its storage, else its results folder) unless ``storage`` or ``results`` says otherwise."""

    study: str | None = None
    recipe: str | None = None
    top: int = Field(3, ge=1, le=1000)
    storage: str | None = None
    results: str | None = None

    @model_validator(mode="after")
    def _one(self) -> WarmStart:
        if (self.study is None) == (self.recipe is None):
            raise ValueError("study.warm_start names a study or a recipe (one of them)")
        return self

    @field_validator("study")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else safe_name(v)


def find(name: str, base: Path | None = None) -> Path:
    """A shipped recipe by name (``vgg16-hed``), or a file as given or beside the config."""
    check_path(str(name), "render.recipe")
    found = files.find(str(name), (base,), shipped=SHIPPED)
    if found is not None:
        return found
    names = sorted(p.stem for p in SHIPPED.glob("*.yaml"))
    raise UserError(f"recipe {shorten(name)}: no such file or shipped recipe"
                    f"{closest(name, names) or '; shipped: ' + ', '.join(names)}")


def load(path: Path) -> Recipe:
    return parse(Recipe, yamlfile.read(path), where=str(path))


def family(model: ModelSpec) -> tuple[str, str]:
    """``recipe: auto``: the shipped recipe for this model, and a line when it is only the
    closest family's."""
    name = model.name or ""
    if name not in FAMILIES:
        raise UserError(f"render.recipe auto: no shipped recipe for model "
                        f"{shorten(name or model.path or model.onnx)}; shipped: "
                        + ", ".join(sorted(set(FAMILIES.values()))))
    recipe = FAMILIES[name]
    made_for = load(SHIPPED / f"{recipe}.yaml").model
    note = "" if made_for.get("name") == name else (
        f"recipe {recipe} was made on {made_for.get('name')}; {name} is the closest family")
    return recipe, note


def lookup(recipe: Recipe, target: TargetSpec, label: str = "recipe") -> tuple[Entry, str]:
    """The entry for ``target``: its kind and layer, else the nearest layer above it (earlier in
    the model), else the nearest below; the second value says which was used when not exact."""
    kind = target.kind
    entries = [e for e in recipe.entries if e.kind == kind]
    if not entries and kind != "class":  # filters and whole layers share their settings
        entries = [e for e in recipe.entries if e.kind in ("filter", "layer")]
    if not entries:
        kinds = sorted({e.kind for e in recipe.entries})
        raise UserError(f"{label} has no entry for {kind} targets; it has {', '.join(kinds)}")
    if kind == "class":
        return entries[0], ""
    by_layer = {e.layer: e for e in entries}
    layer = target.layer
    if layer in by_layer:
        return by_layer[layer], ""
    order = {name: i for i, name in enumerate(recipe.layers)}
    known = sorted(((order[e.layer], n), e) for n, e in enumerate(entries) if e.layer in order)
    if layer in order and known:
        above = [e for (i, _), e in known if i < order[layer]]
        chosen, where = (above[-1], "above") if above else (known[0][1], "below")
    else:  # a model of the same family: the same block, if any
        block = str(layer).split("_")[0]
        same = [e for e in entries if str(e.layer).split("_")[0] == block]
        if not same:
            raise UserError(f"{label} has no layer {shorten(layer)} nor one of its block; it "
                            f"has {', '.join(e.layer for e in entries)}")
        chosen, where = same[-1], "of the same block"
    return chosen, (f"{label} has no entry for layer {layer}; using {chosen.layer}'s, the "
                    f"nearest {where}")


def expand(render: Any, model: ModelSpec, target: TargetSpec, where: str,
           base: Path | None = None, home: StudySpec | None = None
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``render:`` as plain settings, and a record of where they came from (empty when the
    section names no recipe or study). The section's other keys override the source's. A
    study is looked for where ``home`` (the config's own study) lives unless the section
    names a ``storage`` or ``results``."""
    if not isinstance(render, dict) or not any(k in render for k in SOURCE_KEYS):
        return render, {}
    rest = {k: v for k, v in render.items() if k not in SOURCE_KEYS}
    if isinstance(render.get("recipe"), dict):  # {recipe: {study: NAME, trial: best}}
        render = {**rest, **_study_recipe(render, where)}
    if "recipe" in render:
        if any(k in render for k in STUDY_KEYS):
            raise UserError(f"{where}: render names a recipe or a study, not both")
        name, note = str(render["recipe"]), ""
        if name == "auto":
            name, note = family(model)
        recipe = load(find(name, base))
        entry, nearer = lookup(recipe, target, label=f"recipe {name}")
        came = {"recipe": name, "kind": entry.kind, "layer": entry.layer,
                "source": entry.source, "note": "; ".join(n for n in (note, nearer) if n)}
        return {**entry.render, **rest}, came
    if "study" not in render:
        raise UserError(f"{where}: render.trial needs render.study (the study to take it from)")
    settings, came = trial_settings(render, where, home)
    return {**settings, **rest}, came


def _study_recipe(render: dict[str, Any], where: str) -> dict[str, Any]:
    """``render: {recipe: {study: NAME, trial: best}}``, the same as ``render: {study: NAME,
    trial: best}``: a stored trial's settings as the recipe."""
    inner = render["recipe"]
    if "study" not in inner or set(inner) - set(STUDY_KEYS) or any(k in render
                                                                   for k in STUDY_KEYS):
        raise UserError(f"{where}: render.recipe is a recipe's name or file, or a stored trial "
                        f"as {{study: NAME, trial: best}}; got {shorten(inner)}")
    return inner


def _where(spec: dict[str, Any], home: StudySpec | None) -> tuple[str | None, str]:
    """The storage and results folder to look for a named study in: the ones ``spec`` names,
    else the config's own study's (``home``), else ``results/``."""
    if spec.get("storage") or spec.get("results") or home is None:
        return spec.get("storage"), str(spec.get("results") or "results")
    return home.storage, home.results


def trial_settings(spec: dict[str, Any], where: str, home: StudySpec | None = None
                   ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings a stored trial rendered with (``{study, trial, storage, results}``; the
    study looked for where ``home`` lives unless ``storage`` or ``results`` is given)."""
    from vissearch.study import store

    try:
        name = safe_name(spec["study"])
    except ValueError as err:
        raise UserError(f"{where}: render.study {err}") from None
    study = store.open_study(name, *_where(spec, home))
    trial = store.find_trial(study, str(spec.get("trial", "best")))
    if "settings" not in trial.user_attrs:
        raise UserError(f"{where}: trial {trial.number} of study {spec['study']} recorded no "
                        "settings")
    scores = {k: v for k, v in trial.user_attrs.get("scores", {}).items()
              if isinstance(v, float)}
    came = {"study": str(spec["study"]), "trial": trial.number,
            "values": list(trial.values or []), "scores": scores}
    return dict(trial.user_attrs["settings"]), came


def entry_from_trial(trial, kind: str, layer: str | None, study_name: str,
                     objectives: list[str]) -> dict[str, Any]:
    """A recipe entry from a recorded trial: its settings that differ from the defaults, and
    where it came from (with readers' figures, where readers judged it)."""
    from vissearch.study import store

    render = changed(trial.user_attrs["settings"])
    render.pop("seed", None)
    scores = trial.user_attrs.get("scores", {})
    kept = {k: round(float(v), 4) for k, v in scores.items()
            if isinstance(v, int | float) and k in (*objectives, "activation", "robustness",
                                                   "readability", "dead")}
    source = {"study": study_name, "trial": trial.number, "scores": kept,
              "made": datetime.date.today().isoformat()}
    readers = {k.removeprefix("readers_"): round(float(v), 4)
               for k, v in trial.user_attrs.items() if k in store.READERS and v is not None}
    if readers:  # what blind readers said, beside the judge's scores
        source["readers"] = readers
    return {"kind": kind, "layer": layer, "render": render, "source": source}


def write(path: Path, model: dict[str, Any], about: str, layers: list[str],
          entries: list[dict[str, Any]]) -> Path:
    """Write a recipe file (validated first)."""
    data = {"recipe": 1, "model": model, "about": about, "layers": layers, "entries": entries}
    parse(Recipe, data, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, width=99), encoding="utf-8")
    return path


def warm_settings(spec: dict[str, Any], model: ModelSpec, target: TargetSpec,
                  where: str, home: StudySpec | None = None
                  ) -> list[tuple[dict[str, Any], str]]:
    """The settings a warm start enqueues, each with its origin: the best ``top`` trials of a
    study (looked for where ``home`` lives unless the warm start names a storage or results
    folder), or a recipe's entry for the target."""
    warm = parse(WarmStart, spec, where=f"{where}: study.warm_start")
    if warm.recipe is not None:
        settings, came = expand({"recipe": warm.recipe}, model, target, where)
        return [(settings, f"recipe {warm.recipe} ({came.get('layer') or 'class'})")]
    from vissearch.study import store

    study = store.open_study(warm.study, *_where(warm.model_dump(), home))
    best = [t for t in store.preferred(study) if "settings" in t.user_attrs][:warm.top]
    if not best:
        raise UserError(f"{where}: study.warm_start: study {warm.study!r} has no completed "
                        "trial to start from")
    return [(dict(t.user_attrs["settings"]), f"study {warm.study} trial {t.number}")
            for t in best]


def to_params(settings: dict[str, Any], space, fixed: dict[str, Any]
              ) -> tuple[dict[str, Any], list[str]]:
    """Optuna parameters of ``space`` for known ``settings``: values outside a range are clipped
    to it, a choice the space lacks is left to the sampler; each such change is a line."""
    params, changes = {}, []
    values = dict(fixed)
    for d in space.dists:
        if not d.holds(values):
            continue
        value = settings.get(d.name, RenderSettings.model_fields[d.name].default)
        if d.or_zero:
            params[f"{d.name}_on"] = value != 0
            if value == 0:
                values[d.name] = 0
                continue
        if d.kind == "choice":
            if value not in d.choices:
                changes.append(f"{d.name} {shorten(value, 30)} is not a choice; sampled")
                continue
        else:
            clipped = min(max(value, d.low), d.high)
            if d.kind == "int":
                step = d.step or 1
                clipped = int(d.low + round((clipped - d.low) / step) * step)
                clipped = min(clipped, d.high)
            if clipped != value:
                changes.append(f"{d.name} {value:.4g} clipped to {clipped:.4g}")
            value = clipped
        params[d.name] = value
        values[d.name] = value
    return params, changes
