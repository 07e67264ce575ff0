"""Run configs: the five sections of ``python -m vissearch run CONFIG``, validated before any model
loads. No TensorFlow.

    study:  name, storage, sampler, seed, n_trials, timeout, pruner, objective
    model:  name | path | onnx, weights, classes, preprocess, trust_model_code
    target: kind, layer, indices, reduce
    render: fixed engine settings (any RenderSettings field)
    search: a space file, a mapping, or {include: FILE, ...overrides}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from vissearch import files, recipes
from vissearch.errors import UserError, closest, shorten
from vissearch.models import labels, zoo
from vissearch.scoring import scores
from vissearch.settings import yamlfile
from vissearch.settings.config import (
    NAMED_WEIGHTS,
    ModelSpec,
    RenderSettings,
    TargetSpec,
    _Frozen,
    parse,
)
from vissearch.settings.studyspec import StudySpec
from vissearch.study import searchspace

IMAGE_COPIES = 6  # float images one batch image holds: itself, its gradient, optimizer slots...
CURVE_BYTES = 16  # per target and step: the loss curve and the activation curve
FIT_SHARE = 0.8  # of the machine's memory one trial may take


class RunSections(_Frozen):
    study: StudySpec
    model: ModelSpec
    target: TargetSpec
    render: dict[str, Any] = Field(default_factory=dict)
    search: str | dict[str, Any] | None = None


@dataclass(frozen=True)
class RunConfig:
    """A validated run config and the raw mapping it came from (stored in the study)."""

    study: StudySpec
    model: ModelSpec
    target: TargetSpec
    fixed: dict[str, Any]
    space: searchspace.SearchSpace
    raw: dict[str, Any]
    path: str | None = None
    settings_from: dict[str, Any] | None = None  # the recipe or trial render: named

    def settings(self, values: dict[str, Any], seed: int) -> RenderSettings:
        """Full settings of one trial: defaults, then fixed, then sampled values, then the seed."""
        return parse(RenderSettings, {**self.fixed, **values, "seed": seed}, where="trial")

    def stored(self) -> dict[str, Any]:
        """The config as the study keeps it: the render settings and the search space resolved
        inline, no file needed."""
        from vissearch.study.store import shown  # no password is stored where others read it

        raw = dict(self.raw)
        if isinstance(raw.get("study"), dict) and raw["study"].get("storage"):
            raw["study"] = {**raw["study"], "storage": shown(raw["study"]["storage"])}
        return {**raw, "render": self.fixed, "search": self.space.spec}


def from_mapping(raw: dict[str, Any], path: str | None = None) -> RunConfig:
    """Validate a run config; every mistake that can be known before a model loads, including
    settings the search space could draw that would always fail, is one line."""
    where = path or "config"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping of sections, got {type(raw).__name__}")
    sections = parse(RunSections, raw, where=where)
    base = Path(path).parent if path else None
    model = resolve_paths(sections.model, base, where)
    if model != sections.model:  # the study keeps the file it found, wherever it runs from
        changed = {k: v for k, v in model.model_dump().items()
                   if v != getattr(sections.model, k)}
        sections = sections.model_copy(update={"model": model})
        raw = {**raw, "model": {**raw["model"], **changed}}
    if sections.study.warm_start is not None:
        parse(recipes.WarmStart, sections.study.warm_start, where=f"{where}: study.warm_start")
    _check_objectives(sections, where)
    _check_model(sections.model, where)
    target = labels.resolve_target(sections.target, sections.model, where)
    explicit = {k: v for k, v in sections.render.items() if k not in recipes.SOURCE_KEYS}
    space = searchspace.load(sections.search, base=base, fixed=explicit)
    fixed, came = recipes.expand(dict(sections.render), sections.model, target, where, base,
                                 sections.study)
    if came:  # a recipe's or a trial's settings that the space searches are left to the search
        came["searched"] = sorted(set(fixed) & set(space.names))
        fixed = {k: v for k, v in fixed.items() if k not in space.names}
    settings = parse(RenderSettings, fixed, where=f"{where}: render")
    _check_fits(settings, target, where)
    _check_candidates(settings, sections.study, space, where)
    if sections.study.sampler == "grid":
        space.grid()
    _check_corners(space, fixed, where)
    return RunConfig(sections.study, sections.model, target, fixed, space, raw, path, came)


def _check_objectives(sections: RunSections, where: str) -> None:
    """Each objective is a score that this study can compute (NaN for every trial is a typo)."""
    model = sections.model
    for name in sections.study.objectives:
        if name not in scores.SCORES:
            hint = closest(name, scores.SCORES)  # a near name, or else every valid one
            raise UserError(f"{where}: study.objective {shorten(name, 20)} is not a score"
                            + (hint or f"; valid: one of the {len(scores.SCORES)} scores in the "
                               f"README's Scores table: {', '.join(list(scores.SCORES)[:5])}..."))
        needs = scores.SCORES[name].needs
        if needs in ("class", "judge") and sections.target.kind != "class":
            raise UserError(f"{where}: study.objective {name} needs a class target, not kind: "
                            f"{sections.target.kind}; use activation")
        if needs == "judge" and not zoo.default_judge(model.name, model.path, model.judge):
            raise UserError(f"{where}: study.objective {name} needs a judge; name one in "
                            "model.judge (zoo/efficientnet-lite2 for ImageNet classes)")
        if needs == "shapes" and (zoo.ZOO.get(model.name or "") is None
                                  or zoo.ZOO[model.name].classes != "shapes"):
            raise UserError(f"{where}: study.objective {name} needs real examples, which only "
                            "the zoo/shapes models have")


def _check_candidates(settings: RenderSettings, study, space, where: str) -> None:
    """``candidates`` renders a trial's seeds one after another: a trial stopped midway (a
    pruner, halving) could not be replayed, so those are refused together."""
    if "candidates" in space.names:
        raise UserError(f"{where}: search.candidates cannot be searched (it multiplies a "
                        "trial's time); fix it in render:")
    if settings.candidates == 1:
        return
    if study.pruner != "none":
        raise UserError(f"{where}: render.candidates {settings.candidates} with study.pruner "
                        f"{study.pruner}: a trial pruned among its candidates could not be "
                        "replayed; set pruner: none or candidates: 1")
    if study.halving is not None:
        raise UserError(f"{where}: render.candidates {settings.candidates} with study.halving: "
                        "a trial's candidates render one after another and cannot be halved; "
                        "leave halving out or set candidates: 1")


def memory_bytes() -> int:
    """This machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**40


def _check_fits(settings: RenderSettings, target: TargetSpec, where: str) -> None:
    """Refuse a trial that cannot fit in memory before any model loads: a batch's images with
    their gradients and optimizer state, every target's final image, and the loss curves."""
    side, targets = settings.image_side, len(target.indices)
    batch = min(settings.batch_size, targets)
    need = (IMAGE_COPIES * batch + targets) * side * side * 3 * 4 \
        + CURVE_BYTES * targets * settings.total_steps
    have = memory_bytes()
    if need > have * FIT_SHARE:
        raise UserError(
            f"{where}: one trial would need about {need / 2**30:.1f} GiB ({targets} targets, "
            f"{side} px, batch {batch}, {settings.total_steps} steps); this machine has "
            f"{have / 2**30:.0f} GiB: lower render.size, render.batch_size, render.steps or "
            "the number of target.indices")


def resolve_paths(model: ModelSpec, base: Path | None, where: str) -> ModelSpec:
    """The model's files as given (from the working folder) or else beside the config file; a
    file in neither place is one line that says where it looked."""
    update = {}
    for key in ("path", "onnx", "weights", "judge", "classes"):
        value = getattr(model, key)
        if not value or value in NAMED_WEIGHTS or value.startswith("zoo/") or (
                key == "judge" and not value.endswith((".keras", ".h5", ".hdf5"))):
            continue
        found = files.find(value, (base,))
        if found is None:
            looked = f"{Path.cwd()}" + (f" and in {base.resolve()}" if base else "")
            valid = "; valid: imagenet, hed, none or a path" if key == "weights" else ""
            raise UserError(f"{where}: model.{key} {shorten(value)}: no such file (looked in "
                            f"{looked}){valid}")
        update[key] = str(found.resolve())
    return model.model_copy(update=update) if update else model


def _check_model(model: ModelSpec, where: str) -> None:
    if model.name and model.name.startswith("zoo/") and model.name not in zoo.NAMES:
        raise UserError(f"{where}: model.name {shorten(model.name)} is not in the zoo"
                        f"{closest(model.name, zoo.NAMES)}")


def _check_corners(space: searchspace.SearchSpace, fixed: dict[str, Any], where: str) -> None:
    """Refuse a space that can draw settings that always fail (fourier with blur, an upscaling
    plan that cannot start...): every trial drawing them would fail."""
    for values in space.corners(fixed):
        try:
            parse(RenderSettings, {**values, "seed": 0})
        except UserError as err:
            drawn = {k: v for k, v in values.items() if k in space.names}
            raise UserError(f"{where}: search can draw {shorten(drawn, 120)}, which always "
                            f"fails: {err}") from None


def load(path: str, storage: str | None = None) -> RunConfig:
    """Read and validate a run config file; ``storage`` overrides ``study.storage``."""
    raw = yamlfile.read(path)
    if storage:
        study = raw.get("study")
        raw = {**raw, "study": {**(study if isinstance(study, dict) else {}), "storage": storage}}
    return from_mapping(raw, path)
