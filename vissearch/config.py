"""Configuration: YAML files -> frozen, validated settings. No TensorFlow here.

A run config and an experiment file share the sections ``model``, ``target`` and ``render``; a
run config adds ``study`` and ``search``. Every engine setting is a typed field of
:class:`RenderSettings` with a documented default, so a search space can name any of them.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from vissearch.errors import UserError, closest


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class RenderSettings(_Frozen):
    """Every setting of one render. All of them can be fixed in ``render:`` or searched."""

    # image and initialization
    size: int = Field(128, ge=8, description="output side in pixels")
    steps: int = Field(200, ge=1, description="ascent steps in all (split over upscaling stages)")
    seed: int = Field(0, ge=0)
    param: Literal["pixel", "fourier"] = "pixel"
    init: Literal["uniform", "gaussian", "gray", "image"] = "uniform"
    init_scale: float = Field(10.0, ge=0, description="pixel units: uniform +-scale, gaussian std")
    init_image: str | None = None
    decorrelate: bool = True
    fourier_decay: float = Field(1.0, ge=0, description="spectrum scale 1/f^decay (fourier)")
    # update
    optimizer: Literal["sgd", "nesterov", "rmsprop", "adam"] = "sgd"
    lr: float = Field(1.0, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    normalize_grad: bool = True
    schedule: Literal["constant", "step", "cosine", "linear"] = "constant"
    lr_final: float = Field(0.0, ge=0, le=1, description="cosine/linear: final lr as a fraction")
    lr_step_every: int = Field(100, ge=1)
    lr_step_gamma: float = Field(0.5, gt=0, le=1)
    # regularizers
    clip: bool = True
    clip_every: int = Field(1, ge=1)
    decay: float = Field(0.0, ge=0, lt=1)
    decay_every: int = Field(1, ge=1)
    blur_sigma: float = Field(0.0, ge=0)
    blur_every: int = Field(4, ge=1)
    median_size: Literal[0, 3, 5] = 0
    median_every: int = Field(4, ge=1)
    norm_pct: float = Field(0.0, ge=0, lt=100, description="zero pixels below this norm pct")
    norm_pct_every: int = Field(1, ge=1)
    contrib_pct: float = Field(0.0, ge=0, lt=100, description="zero pixels below this contrib pct")
    contrib_pct_every: int = Field(1, ge=1)
    jitter: int = Field(0, ge=0, description="random shift each step, pixels")
    scale: float = Field(0.0, ge=0, lt=1, description="random scale in [1-s, 1+s] each step")
    rotate: float = Field(0.0, ge=0, le=180, description="random rotation in degrees each step")
    tv: float = Field(0.0, ge=0, description="total-variation penalty weight")
    # schedule of the image itself
    upscale_stages: int = Field(0, ge=0, description="0: render at full size only")
    upscale_factor: float = Field(1.2, gt=1)
    early_stop_window: int = Field(0, ge=0, description="0: no early stopping")
    early_stop_tol: float = Field(1e-3, ge=0)
    keep: Literal["last", "best", "plain"] = "last"
    plain_steps: int = Field(1, ge=1, description="keep=plain: final steps without regularizers")
    batch_size: int = Field(32, ge=1)
    # output
    png: Literal["exact", "keras"] = "exact"
    png_std: float = Field(0.1, gt=0, description="keras deprocess: std of the normalized image")
    grid: int | None = Field(None, ge=1, description="grid side; default ceil(sqrt(targets))")
    skip_dead: bool = False

    @field_validator("median_size", mode="before")
    @classmethod
    def _odd_median(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and v not in (0, 3, 5):
            raise ValueError(f"median_size must be 0 (off), 3 or 5, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RenderSettings:
        if self.init == "image" and not self.init_image:
            raise ValueError("init: image needs init_image: PATH")
        if self.param == "fourier":
            pixel_only = {
                "blur_sigma": self.blur_sigma, "median_size": self.median_size,
                "decay": self.decay, "norm_pct": self.norm_pct,
                "contrib_pct": self.contrib_pct, "upscale_stages": self.upscale_stages,
            }
            on = [k for k, v in pixel_only.items() if v]
            if on:
                raise ValueError(
                    f"{', '.join(on)} act on the pixel image; with param: fourier set them to 0"
                )
        return self


class ModelSpec(_Frozen):
    """Which network: a keras.applications or zoo name, or a saved Keras file."""

    name: str | None = None
    path: str | None = None
    weights: str = "imagenet"
    preprocess: Literal["auto", "caffe", "tf", "torch", "unit", "none"] = "auto"
    trust_model_code: bool = False
    judge: str | None = Field(None, description="model that scores transfer; zoo default")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if bool(self.name) == bool(self.path):
            raise ValueError("give exactly one of model.name or model.path")
        return self


class TargetSpec(_Frozen):
    """What to maximize: one image per index, all rendered in one batch."""

    kind: Literal["class", "filter", "layer", "neuron"] = "filter"
    layer: str | None = None
    # required, except for kind: layer (replicas, default [0]); class names resolve to numbers
    # (vissearch.labels) before anything renders
    indices: list[int | str] | None = None
    reduce: Literal["mean", "sum"] = "mean"

    @field_validator("indices", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        if isinstance(v, dict) and set(v) <= {"start", "stop"} and "stop" in v:
            return list(range(int(v.get("start", 0)), int(v["stop"])))
        if isinstance(v, int) and not isinstance(v, bool):
            return [v]
        return v

    @model_validator(mode="after")
    def _valid(self) -> TargetSpec:
        if self.kind != "class" and not self.layer:
            raise ValueError(f"target.layer is required for kind: {self.kind}")
        if self.indices is None:
            if self.kind != "layer":
                raise ValueError(f"target.indices is required for kind: {self.kind} "
                                 "(a list of class or filter numbers)")
            object.__setattr__(self, "indices", [0])
        if not self.indices:
            raise ValueError("target.indices is empty")
        numbers = [i for i in self.indices if isinstance(i, int)]
        neg = [i for i in numbers if i < 0]
        if neg:
            raise ValueError(f"target.indices must be >= 0, got {neg}")
        if self.kind != "class" and len(numbers) < len(self.indices):
            raise ValueError(f"target.indices: names are for kind: class; {self.kind} "
                             "indices are numbers")
        counts = collections.Counter(self.indices)
        dup = sorted(str(i) for i, n in counts.items() if n > 1)
        if dup:
            raise ValueError(f"target.indices has duplicates: [{', '.join(dup)}]")
        return self


class HalvingSpec(_Frozen):
    """Successive halving inside a population (vissearch.halving)."""

    rungs: list[float] = Field(default_factory=lambda: [0.125, 0.25, 0.5],
                               description="shares of the steps at which trials are compared")
    keep: float = Field(0.5, gt=0, lt=1, description="share of the trials that go on")

    @field_validator("rungs")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < f < 1 for f in v):
            raise ValueError(f"rungs are shares of the steps between 0 and 1, got {v}")
        return sorted(v)


class StudySpec(_Frozen):
    """The Optuna study: where it lives and how it samples."""

    name: str
    storage: str | None = None
    sampler: Literal["random", "tpe", "qmc", "grid"] = "random"
    seed: int = Field(1337, ge=0)
    n_trials: int = Field(20, ge=1)
    timeout: float | None = Field(None, gt=0)
    pruner: Literal["none", "median", "hyperband"] = "none"
    objective: str | list[str] = "activation"
    population: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = Field(
        1, description="trials rendered together in one batch; auto fills a memory budget")
    halving: HalvingSpec | None = None
    results: str = "results"

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        ok = v and all(c.isalnum() or c in "-_." for c in v) and not v.startswith(".")
        if not ok:
            raise ValueError(f"study.name {v!r} may hold only letters, digits, '-', '_' and '.'")
        return v

    @property
    def objectives(self) -> list[str]:
        return [self.objective] if isinstance(self.objective, str) else list(self.objective)


class Experiment(_Frozen):
    """A fixed render (or several): what `python -m vissearch render FILE` reads."""

    model: ModelSpec
    target: TargetSpec
    render: RenderSettings = Field(default_factory=RenderSettings)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    description: str = ""


def format_validation_error(err: ValidationError, model: type[BaseModel]) -> str:
    """One line for the first problem: key path, bad value, what is valid."""
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        parent = model
        for part in e["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            ann = getattr(field, "annotation", None)
            parent = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        names = parent.model_fields if parent is not None else {}
        return f"{loc}: unknown key{closest(str(e['loc'][-1]), names)}"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] in ("value_error", "assertion_error"):
        return f"{loc}: {msg}" if loc else msg
    return f"{loc}: {msg}, got {e.get('input')!r}"


def parse(model: type[BaseModel], data: Any, where: str = "") -> Any:
    """Validate ``data`` against ``model``; a problem becomes a one-line :class:`UserError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        prefix = f"{where}: " if where else ""
        raise UserError(prefix + format_validation_error(err, model)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping safely; a missing file or a syntax error names the line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{p}: YAML syntax error{line}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a mapping of sections, got {type(data).__name__}")
    return data


def merged(base: BaseModel, overrides: dict[str, Any], where: str = "") -> Any:
    """A copy of ``base`` with ``overrides`` applied and validated again."""
    return parse(type(base), {**base.model_dump(), **overrides}, where=where)
