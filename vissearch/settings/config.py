"""Configuration: YAML files -> frozen, validated settings. No TensorFlow here.

A run config and an experiment file share the sections ``model``, ``target`` and ``render``; a
run config adds ``study`` (:mod:`vissearch.settings.studyspec`) and ``search``. Every engine
setting is a typed field of :class:`RenderSettings` with a documented default, so a search
space can name any of them.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vissearch.errors import shorten
from vissearch.files import check_path
from vissearch.settings.validate import format_validation_error, merged, parse  # noqa: F401 (re-exported)

MAX_INT = 2**31 - 1  # counts and seeds fit a 32-bit integer
MAX_TARGETS = 65_536  # indices of one target: more classes or channels than a model has
NAMED_WEIGHTS = ("imagenet", "hed", "none")  # model.weights that are not a file


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


class RenderSettings(_Frozen):
    """Every setting of one render. All of them can be fixed in ``render:`` or searched."""

    # image and initialization
    size: int = Field(128, ge=8, le=4096, description="output side in pixels")
    steps: int = Field(200, ge=1, le=100_000,
                       description="ascent steps in all (split over upscaling stages)")
    seed: int = Field(0, ge=0, le=MAX_INT)
    param: Literal["pixel", "fourier", "maco"] = "pixel"
    init: Literal["uniform", "gaussian", "gray", "image"] = "uniform"
    init_scale: float = Field(10.0, ge=0, le=1000,
                              description="pixel units: uniform +-scale, gaussian std")
    init_image: str | None = None
    decorrelate: bool = True
    fourier_decay: float = Field(1.0, ge=0, le=10, description="spectrum scale 1/f^decay")
    maco_spectrum: Literal["natural", "power"] = Field(
        "natural", description="maco: the fixed magnitude, of natural photos or 1/f^maco_alpha")
    maco_alpha: float = Field(1.0, ge=0, le=4, description="maco_spectrum power: 1/f^alpha")
    maco_photo_side: int = Field(0, ge=0, le=4096, description="maco_spectrum natural: "
                                 "the photos at the canvas's resolution (0) or shrunk to N px")
    contrast: float = Field(1.0, gt=0, le=10, description="maco: image std before the sigmoid")
    maco_phase_offset: bool = Field(False, description="maco: add a fixed random phase")
    canvas: int = Field(0, ge=0, le=4096, description="side of the image (0: size), seen at size")
    crops: int = Field(0, ge=0, le=64,
                       description="random crops the model sees per image and step; 0: none")
    crop_min: float = Field(0.5, gt=0, le=1, description="smallest crop side, share of canvas")
    crop_max: float = Field(1.0, gt=0, le=1, description="largest crop side, share of canvas")
    crop_spread: float = Field(1.0, ge=0, le=1, description="crops stray: 1 anywhere, 0 centred")
    crop_schedule: Literal["uniform", "shrink"] = Field(
        "uniform", description="crop sides: uniform in [crop_min, crop_max] at every step, or "
                               "shrink from crop_max to crop_min over the steps (MaCo's)")
    crop_center_std: float = Field(0.0, ge=0, le=1, description="above 0: crop centres normal "
                                   "around the middle, this std (share of canvas; MaCo's 0.15)")
    crop_noise: float = Field(0.0, ge=0, le=1, description="noise on each crop: normal (this "
                              "std) + uniform (this width), share of pixel range (MaCo's 0.04)")
    # update
    optimizer: Literal["sgd", "nesterov", "rmsprop", "adam", "nadam"] = "sgd"
    lr: float = Field(1.0, gt=0, le=1e9)
    momentum: float = Field(0.9, ge=0, lt=1)
    normalize_grad: bool = True
    schedule: Literal["constant", "step", "cosine", "linear"] = "constant"
    lr_final: float = Field(0.0, ge=0, le=1, description="cosine/linear: final lr as a fraction")
    lr_step_every: int = Field(100, ge=1, le=MAX_INT)
    lr_step_gamma: float = Field(0.5, gt=0, le=1)
    # regularizers
    clip: bool = True
    clip_every: int = Field(1, ge=1, le=MAX_INT)
    decay: float = Field(0.0, ge=0, lt=1)
    decay_every: int = Field(1, ge=1, le=MAX_INT)
    blur_sigma: float = Field(0.0, ge=0, le=3, description="0: off; kernels span 25 taps")
    blur_every: int = Field(4, ge=1, le=MAX_INT)
    median_size: Literal[0, 3, 5] = 0
    median_every: int = Field(4, ge=1, le=MAX_INT)
    norm_pct: float = Field(0.0, ge=0, lt=100, description="zero pixels below this norm pct")
    norm_pct_every: int = Field(1, ge=1, le=MAX_INT)
    contrib_pct: float = Field(0.0, ge=0, lt=100, description="zero pixels below this contrib pct")
    contrib_pct_every: int = Field(1, ge=1, le=MAX_INT)
    jitter: int = Field(0, ge=0, le=1024, description="random shift each step, pixels")
    scale: float = Field(0.0, ge=0, lt=1, description="random scale in [1-s, 1+s] each step")
    rotate: float = Field(0.0, ge=0, le=180, description="random rotation in degrees each step")
    tv: float = Field(0.0, ge=0, le=1e6, description="total-variation penalty weight")
    rivals: float = Field(0.0, ge=0, le=1, description="class targets: less this share of the "
                          "log-sum-exp of every class score (1: the log-probability)")
    # the better of several seeds (vissearch.engine.candidates)
    candidates: int = Field(1, ge=1, le=16, description="render each target from this many "
                            "seeds (seed, seed + 1, ...) and keep the one the judge prefers")
    judge: str | None = Field(None, min_length=1, max_length=300, description="class targets: "
                              "the classifier that picks among candidates (default: the "
                              "rendering model itself)")
    # schedule of the image itself
    upscale_stages: int = Field(0, ge=0, le=100, description="0: render at full size only")
    upscale_factor: float = Field(1.2, gt=1, le=10)
    early_stop_window: int = Field(0, ge=0, le=MAX_INT, description="0: no early stopping")
    early_stop_tol: float = Field(1e-3, ge=0, le=1e6)
    keep: Literal["last", "best", "plain"] = "last"
    plain_steps: int = Field(1, ge=1, le=100_000, description="keep=plain: unregularized end")
    batch_size: int = Field(32, ge=1, le=4096)
    # how the step computes
    precision: Literal["float32", "mixed"] = Field(
        "float32", description="mixed: the network in bfloat16 (vissearch.engine.precision)")
    jit: bool = Field(False, description="compile the step with XLA")
    fold_batchnorm: bool = Field(
        True, description="fold batch normalizations into the layer before them in the network "
        "the ascent runs: faster, images equal up to float rounding (vissearch.engine.folding)")
    # output
    png: Literal["exact", "keras"] = "exact"
    png_std: float = Field(0.1, gt=0, le=10,
                           description="keras deprocess: std of the normalized image")
    grid: int | None = Field(None, ge=1, le=256,
                             description="grid side; default ceil(sqrt(targets))")
    skip_dead: bool = False
    frame: float = Field(1.0, gt=0, le=1, description="share of the image's side the PNG keeps")

    @field_validator("median_size", mode="before")
    @classmethod
    def _odd_median(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and v not in (0, 3, 5):
            raise ValueError(f"median_size must be 0 (off), 3 or 5, got {v}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RenderSettings:
        if self.init == "image":
            if not self.init_image:
                raise ValueError("init: image needs init_image: PATH")
            check_path(self.init_image, "render.init_image")
            if not Path(self.init_image).is_file():
                raise ValueError(f"init_image {shorten(self.init_image)}: no such file")
        self.stages()  # an upscaling plan that cannot start is refused here
        if self.judge is not None and self.candidates == 1:
            raise ValueError(f"judge {shorten(self.judge)} picks among candidates; set "
                             "candidates: 2 or more, or leave judge out")
        if self.keep == "plain" and self.plain_steps >= self.steps:
            raise ValueError(f"plain_steps {self.plain_steps} must be fewer than steps "
                             f"{self.steps}")
        if self.crop_min > self.crop_max:
            raise ValueError(f"crop_min {self.crop_min} is above crop_max {self.crop_max}")
        if self.canvas and self.canvas < 8:
            raise ValueError(f"canvas {self.canvas} is under 8 px; 0 means the size")
        if self.canvas and self.upscale_stages:
            raise ValueError("canvas and upscale_stages do not combine; set one of them to 0")
        if self.frame_side < 8:
            raise ValueError(f"frame {self.frame} keeps {self.frame_side} px of {self.image_side}")
        if self.param != "pixel":
            pixel_only = {
                "blur_sigma": self.blur_sigma, "median_size": self.median_size,
                "decay": self.decay, "norm_pct": self.norm_pct,
                "contrib_pct": self.contrib_pct, "upscale_stages": self.upscale_stages,
            }
            on = [k for k, v in pixel_only.items() if v]
            if on:
                raise ValueError(
                    f"{', '.join(on)} act on the pixel image; with param: {self.param} set "
                    "them to 0"
                )
        return self

    def stages(self) -> list[tuple[int, int]]:
        """(image side, steps) for each stage of ascent.

        With upscaling the image starts at ``size / factor**K`` and is enlarged by ``factor``
        after each of the K stages, ending at ``size`` (the Keras example: 9 stages, 1.2,
        412 px).
        """
        k = self.upscale_stages
        if not k:
            return [(self.image_side, self.steps)]
        if self.steps < k:
            raise ValueError(f"steps {self.steps} is fewer than upscale_stages {k}")
        per, extra = divmod(self.steps, k)
        sizes = [int(self.size / self.upscale_factor ** (k - i)) for i in range(k)]
        if sizes[0] < 8:
            raise ValueError(f"upscale_stages {k} with factor {self.upscale_factor} starts at "
                             f"{sizes[0]} px (at least 8); use fewer stages or a smaller factor")
        return [(sz, per + (extra if i == k - 1 else 0)) for i, sz in enumerate(sizes)]

    @property
    def image_side(self) -> int:
        """The side of the optimized image: the canvas, or the size."""
        return self.canvas or self.size

    @property
    def frame_side(self) -> int:
        """The side of the PNG: the centre ``frame`` of the image's side (at least 8)."""
        return round(self.image_side * self.frame)

    @property
    def total_steps(self) -> int:
        """Ascent steps of one batch, over all stages."""
        return sum(n for _, n in self.stages())


def changed(settings: dict[str, Any]) -> dict[str, Any]:
    """The entries of a settings mapping (a RenderSettings dump) that differ from the defaults:
    what a config's render: section needs to say to give the same settings."""
    defaults = RenderSettings().model_dump()
    return {k: v for k, v in settings.items() if k not in defaults or v != defaults[k]}


class ModelSpec(_Frozen):
    """Which network: a keras.applications or zoo name, a saved Keras file, or an ONNX file
    (converted once, cached beside it: :mod:`vissearch.models.onnxconvert`)."""

    name: str | None = None
    path: str | None = None
    onnx: str | None = None
    weights: str = "imagenet"
    preprocess: Literal["auto", "caffe", "tf", "torch", "unit", "none"] = "auto"
    trust_model_code: bool = False
    judge: str | None = Field(None, description="model that scores transfer; zoo default")
    classes: str | None = Field(None, description="class names: imagenet or a text file, "
                                                  "one name a line, in output order")

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if sum(bool(v) for v in (self.name, self.path, self.onnx)) != 1:
            raise ValueError("give exactly one of model.name, model.path or model.onnx")
        for key, value in (("model.path", self.path), ("model.onnx", self.onnx)):
            if value:
                check_path(value, key)
        if self.weights not in NAMED_WEIGHTS:
            check_path(self.weights, "model.weights")
        if self.classes not in (None, "imagenet"):
            check_path(self.classes, "model.classes")
        for key, value in (("model.name", self.name), ("model.judge", self.judge)):
            if value is not None and (len(value) > 200 or not value.isprintable()):
                raise ValueError(f"{key} {shorten(value)} is not a model name")
        return self


class TargetSpec(_Frozen):
    """What to maximize: one image per index, all rendered in one batch."""

    kind: Literal["class", "filter", "layer", "neuron"] = "filter"
    layer: str | None = None
    # required, except for kind: layer (replicas, default [0]); class names resolve to numbers
    # (vissearch.models.labels) before anything renders
    indices: list[int | str] | None = None
    reduce: Literal["mean", "sum"] = "mean"

    @field_validator("indices", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return _index_range(v)
        if isinstance(v, int) and not isinstance(v, bool):
            return [v]
        if isinstance(v, list) and len(v) > MAX_TARGETS:
            raise ValueError(f"target.indices holds {len(v):,} entries; at most {MAX_TARGETS:,}")
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
        bad = [i for i in numbers if not 0 <= i <= MAX_INT]
        if bad:
            raise ValueError(f"target.indices must be >= 0, got {shorten(bad)}")
        if any(len(i) > 200 or not i.isprintable() for i in self.indices if isinstance(i, str)):
            raise ValueError("target.indices: a class name is at most 200 printable characters")
        if self.kind != "class" and len(numbers) < len(self.indices):
            raise ValueError(f"target.indices: names are for kind: class; {self.kind} "
                             "indices are numbers")
        counts = collections.Counter(self.indices)
        dup = sorted(str(i) for i, n in counts.items() if n > 1)
        if dup:
            raise ValueError(f"target.indices has duplicates: [{', '.join(dup)}]")
        return self


def _index_range(v: dict) -> list[int]:
    """``{start: A, stop: B}``: the indices A..B-1 (A defaults to 0), at most MAX_TARGETS."""
    extra = sorted(str(k) for k in v if k not in ("start", "stop"))
    if extra:
        raise ValueError(f"target.indices: a range takes start and stop, not {shorten(extra)}")
    start, stop = v.get("start", 0), v.get("stop")
    for key, value in (("start", start), ("stop", stop)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
            raise ValueError(f"target.indices.{key} must be a whole number >= 0, "
                             f"got {shorten(value)}")
    if not start < stop <= start + MAX_TARGETS:
        raise ValueError(f"target.indices {{start: {start}, stop: {stop}}} must hold 1 to "
                         f"{MAX_TARGETS:,} indices")
    return list(range(start, stop))


class Experiment(_Frozen):
    """A fixed render (or several): what `python -m vissearch render FILE` reads."""

    model: ModelSpec
    target: TargetSpec
    render: RenderSettings = Field(default_factory=RenderSettings)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    description: str = ""
    settings_from: dict[str, Any] = Field(default_factory=dict)  # render: {recipe: ...} etc.
