"""Run configs: the five sections of ``python -m vissearch run CONFIG``, validated before any model
loads. No TensorFlow.

    study:  name, storage, sampler, seed, n_trials, timeout, pruner, objective
    model:  name | path, weights, preprocess, trust_model_code
    target: kind, layer, indices, reduce
    render: fixed engine settings (any RenderSettings field)
    search: a space file, a mapping, or {include: FILE, ...overrides}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from vissearch import labels, scores, searchspace, zoo
from vissearch.config import (
    ModelSpec,
    RenderSettings,
    StudySpec,
    TargetSpec,
    _Frozen,
    parse,
    read_yaml,
)
from vissearch.errors import UserError, closest


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

    def settings(self, values: dict[str, Any], seed: int) -> RenderSettings:
        """Full settings of one trial: defaults, then fixed, then sampled values, then the seed."""
        return parse(RenderSettings, {**self.fixed, **values, "seed": seed}, where="trial")

    def stored(self) -> dict[str, Any]:
        """The config as the study keeps it: the search space resolved inline, no file needed."""
        return {**self.raw, "search": self.space.spec}


def from_mapping(raw: dict[str, Any], path: str | None = None) -> RunConfig:
    where = path or "config"
    sections = parse(RunSections, raw, where=where)
    if not isinstance(sections.render, dict):
        raise UserError(f"{where}: render must be a mapping of settings")
    parse(RenderSettings, sections.render, where=f"{where}: render")
    for name in sections.study.objectives:
        if name not in scores.SCORES:
            raise UserError(f"{where}: study.objective {name!r} is not a score"
                            f"{closest(name, scores.SCORES)}; valid: {', '.join(scores.SCORES)}")
    if len(sections.study.objectives) > 2:
        raise UserError(f"{where}: study.objective takes one score or a list of two")
    if sections.model.path and not Path(sections.model.path).is_file():
        raise UserError(f"{where}: model.path {sections.model.path!r}: no such file")
    if sections.model.name and sections.model.name.startswith("zoo/"):
        if sections.model.name not in zoo.NAMES:
            raise UserError(f"{where}: model.name {sections.model.name!r} is not in the zoo"
                            f"{closest(sections.model.name, zoo.NAMES)}")
    target = labels.resolve_target(sections.target, sections.model, where)
    base = Path(path).parent if path else None
    space = searchspace.load(sections.search, base=base, fixed=sections.render)
    if sections.study.sampler == "grid":
        space.grid()
    return RunConfig(sections.study, sections.model, target, dict(sections.render),
                     space, raw, path)


def load(path: str, storage: str | None = None) -> RunConfig:
    """Read and validate a run config file; ``storage`` overrides ``study.storage``."""
    raw = read_yaml(path)
    if storage:
        study = raw.get("study")
        raw = {**raw, "study": {**(study if isinstance(study, dict) else {}), "storage": storage}}
    return from_mapping(raw, path)
