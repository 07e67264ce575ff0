"""Search spaces: YAML distributions over engine settings -> Optuna suggestions. No TensorFlow.

A space maps a :class:`~vissearch.settings.config.RenderSettings` field to one distribution::

    lr:           {log_uniform: [1.0, 10000.0]}
    blur_sigma:   {uniform: [0.3, 1.0], or_zero: true}      # also a switch blur_sigma_on
    blur_every:   {int: [4, 8], step: 1, when: {blur_sigma: "> 0"}}
    optimizer:    {choice: [sgd, nesterov, rmsprop, adam]}
    momentum:     {uniform: [0.5, 0.99], when: {optimizer: nesterov}}

``when`` makes a setting conditional: each key names another setting and its test is a value
(equality), a list (membership) or a string ``"> 0"``, ``">= 3"``, ``"!= sgd"``. A setting whose
condition fails is not sampled and keeps its fixed or default value.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from vissearch import files
from vissearch.errors import UserError, closest, shorten
from vissearch.files import check_path
from vissearch.settings import yamlfile
from vissearch.settings.config import MAX_INT, RenderSettings

KINDS = ("log_uniform", "uniform", "int", "choice")
_OPS = {">=": operator.ge, "<=": operator.le, "!=": operator.ne, ">": operator.gt,
        "<": operator.lt, "==": operator.eq}
SETTINGS = RenderSettings.model_fields


def _shipped() -> Path:
    """The spaces ``search: NAME`` names: ``searchspace/`` at the top of a checkout, which an
    installed package carries as ``vissearch/spaces/`` (pyproject.toml maps the folder)."""
    package = Path(__file__).resolve().parents[1]
    checkout = package.parent / "searchspace"
    return checkout if (package.parent / "pyproject.toml").is_file() else package / "spaces"


SHIPPED = _shipped()


@dataclass(frozen=True)
class Dist:
    """One searched setting."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: int | None = None
    choices: tuple = ()
    when: dict[str, Any] = field(default_factory=dict)
    or_zero: bool = False

    def holds(self, values: dict[str, Any]) -> bool:
        return all(_test(values.get(k, SETTINGS[k].default), t) for k, t in self.when.items())

    def suggest(self, trial) -> Any:
        if self.or_zero and not trial.suggest_categorical(f"{self.name}_on", [True, False]):
            return 0
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1)
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "log_uniform")

    def extremes(self) -> list:
        """Low and high (or every choice), and 0 when the setting can be switched off."""
        edges = list(self.choices) if self.kind == "choice" else [self.low, self.high]
        return [0, *edges] if self.or_zero else edges

    def grid_size(self) -> int:
        if self.kind == "int":
            return (self.high - self.low) // (self.step or 1) + 1
        return len(self.choices) if self.kind == "choice" else MAX_GRID + 1

    def grid_values(self) -> list:
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(self.low, self.high + 1, self.step or 1))
        raise UserError(f"search.{self.name}: the grid sampler needs choice or int "
                        f"distributions, not {self.kind}")


def _test(value: Any, test: Any) -> bool:
    if isinstance(test, list):
        return value in test
    if isinstance(test, str):
        for sym in sorted(_OPS, key=len, reverse=True):
            if test.strip().startswith(sym):
                rhs = _literal(test.strip()[len(sym):].strip())
                try:
                    return bool(_OPS[sym](value, rhs))
                except TypeError:
                    return False
    return value == test


def _literal(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


class SearchSpace:
    """Validated distributions, ordered so that a condition's settings are sampled first."""

    def __init__(self, dists: list[Dist], spec: dict[str, Any] | None = None):
        self.dists = _ordered(dists)
        self.spec = spec or {}  # the resolved YAML mapping, stored with the study

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dists]

    def suggest(self, trial, fixed: dict[str, Any]) -> dict[str, Any]:
        """Sample every setting whose condition holds; return fixed values plus samples."""
        values = dict(fixed)
        for d in self.dists:
            if d.holds(values):
                values[d.name] = d.suggest(trial)
        return values

    def grid(self) -> dict[str, list]:
        """Every value of every setting, for Optuna's GridSampler (at most MAX_GRID
        combinations)."""
        sizes = [d.grid_size() * (2 if d.or_zero else 1) for d in self.dists]
        if math.prod(sizes) > MAX_GRID:
            raise UserError(f"search: the grid sampler would enumerate {math.prod(sizes):,} "
                            f"combinations (at most {MAX_GRID:,}); narrow the ranges or use "
                            "sampler: random")
        out = {}
        for d in self.dists:
            if d.or_zero:
                out[f"{d.name}_on"] = [True, False]
            out[d.name] = d.grid_values()
        return out

    def corners(self, fixed: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Settings at the edges of the space: each setting at each of its extremes (low, high,
        every choice, 0 with or_zero), conditions respected. Every combination while there are
        at most MAX_CORNERS, else every pair of settings at every pair of their extremes."""
        extremes = [d.extremes() for d in self.dists]
        if math.prod(len(e) for e in extremes) <= MAX_CORNERS:
            combos = itertools.product(*extremes)
        else:
            combos = _pairwise(extremes)
        for combo in combos:
            values = dict(fixed)
            for d, value in zip(self.dists, combo, strict=True):
                if d.holds(values):
                    values[d.name] = value
            yield values


def _pairwise(extremes: list[list]) -> Iterator[tuple]:
    """Each pair of settings at each pair of their extremes, the others at their first."""
    base = [e[0] for e in extremes]
    for i, j in itertools.combinations(range(len(extremes)), 2):
        for a, b in itertools.product(extremes[i], extremes[j]):
            combo = list(base)
            combo[i], combo[j] = a, b
            yield tuple(combo)


def _ordered(dists: list[Dist]) -> list[Dist]:
    by_name = {d.name: d for d in dists}
    done: list[Dist] = []
    pending = list(dists)
    while pending:
        ready = [d for d in pending
                 if all(k not in by_name or by_name[k] in done for k in d.when)]
        if not ready:
            raise UserError(f"search: conditions form a cycle among {[d.name for d in pending]}")
        done.extend(ready)
        pending = [d for d in pending if d not in ready]
    return done


MAX_BOUND = 1e12  # a search range beyond this is a typo, not a setting
MAX_CHOICES = 1000
MAX_GRID = 100_000  # combinations the grid sampler may enumerate
MAX_CORNERS = 4096  # corner combinations checked one by one; pairwise beyond this


def parse_dist(name: Any, spec: Any) -> Dist:
    """Validate one ``name: {kind: ...}`` entry; the message names the key and what is valid."""
    where = f"search.{name}" if isinstance(name, str) and name.isidentifier() else \
        f"search.{shorten(name, 40)}"
    if not isinstance(name, str) or name not in SETTINGS:
        raise UserError(f"{where}: unknown setting{closest(str(name), SETTINGS)}")
    if name == "seed":
        raise UserError(f"{where}: the seed is set per trial from study.seed; do not search it")
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected a mapping like {{uniform: [lo, hi]}}, got "
                        f"{shorten(spec)}")
    kinds = [k for k in KINDS if k in spec]
    extra = set(spec) - set(KINDS) - {"step", "when", "or_zero"}
    if extra:
        key = str(sorted(map(str, extra))[0])
        valid = (*KINDS, "step", "when", "or_zero")
        raise UserError(f"{where}: unknown key {shorten(key, 40)}{closest(key, valid)}")
    if len(kinds) != 1:
        raise UserError(f"{where}: give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    if kind not in _kinds_for(name):
        raise UserError(f"{where}: {name} takes {' or '.join(_kinds_for(name))}, not {kind}")
    when = _when(where, spec.get("when", {}))
    or_zero = spec.get("or_zero", False)
    if not isinstance(or_zero, bool):
        raise UserError(f"{where}.or_zero: true or false, got {shorten(or_zero)}")
    dist = Dist(name=name, when=when, or_zero=or_zero,
                **_bounds(where, name, kind, spec[kind], spec.get("step")))
    for value in (*dist.choices, dist.low, dist.high):
        if value is not None:
            _check_value(where, name, value)
    if or_zero:
        if kind == "choice":
            raise UserError(f"{where}.or_zero: a choice lists 0 itself if 0 is wanted")
        _check_value(where + ".or_zero", name, 0)
    return dist


def _kinds_for(name: str) -> tuple[str, ...]:
    """The distribution kinds that can draw a valid value of a setting."""
    annotation = SETTINGS[name].annotation
    args = set(typing.get_args(annotation)) - {type(None)}
    if annotation is float:
        return KINDS
    if annotation is int or args == {int}:
        return ("int", "choice")
    return ("choice",)


def _when(where: str, when: Any) -> dict[str, Any]:
    if when is None:
        return {}
    if not isinstance(when, dict):
        raise UserError(f"{where}.when: expected a mapping of settings, got {shorten(when)}")
    for key, test in when.items():
        if not isinstance(key, str) or key not in SETTINGS:
            raise UserError(f"{where}.when: {shorten(key, 40)} is not a setting"
                            f"{closest(str(key), SETTINGS)}")
        values = test if isinstance(test, list) else [test]
        if len(values) > MAX_CHOICES or not all(_scalar(v) for v in values):
            raise UserError(f"{where}.when.{key}: a value, a list of values or a test like "
                            f"'> 0', got {shorten(test)}")
    return dict(when)


def _scalar(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, bool | int | str)


def _bounds(where: str, name: str, kind: str, arg: Any, step: Any) -> dict[str, Any]:
    if kind == "choice":
        if not isinstance(arg, list) or not 1 <= len(arg) <= MAX_CHOICES:
            raise UserError(f"{where}.choice: expected a list of 1 to {MAX_CHOICES} values, got "
                            f"{shorten(arg)}")
        if not all(_scalar(v) for v in arg) or len(set(map(repr, arg))) != len(arg):
            raise UserError(f"{where}.choice: values must be distinct numbers, strings, booleans "
                            f"or null, got {shorten(arg)}")
        return {"kind": kind, "choices": tuple(arg)}
    if not (isinstance(arg, list) and len(arg) == 2):
        raise UserError(f"{where}.{kind}: expected [low, high], got {shorten(arg)}")
    lo, hi = arg
    number = int if kind == "int" else (int, float)
    limit = MAX_INT if kind == "int" else MAX_BOUND
    # the limit first: math.isfinite of an integer past a float's range overflows
    if not all(isinstance(v, number) and not isinstance(v, bool) and abs(v) <= limit
               and math.isfinite(v) for v in (lo, hi)):
        what = "whole numbers" if kind == "int" else "finite numbers"
        raise UserError(f"{where}.{kind}: bounds must be {what} within +-{limit:g}, got "
                        f"{shorten(arg)}")
    if lo >= hi:
        raise UserError(f"{where}.{kind}: empty or inverted range [{lo}, {hi}]; need low < high")
    if kind == "log_uniform" and lo <= 0:
        raise UserError(f"{where}.log_uniform: range [{lo}, {hi}] touches 0; a log range needs "
                        "low > 0 (use or_zero: true to allow 0)")
    if step is not None and (kind != "int" or not isinstance(step, int)
                             or isinstance(step, bool) or not 1 <= step <= hi - lo):
        raise UserError(f"{where}.step: only int ranges take a step, a whole number from 1 to "
                        f"the range's width; got {shorten(step)}")
    if step is not None and (hi - lo) % step:
        raise UserError(f"{where}.step: {step} does not divide the range [{lo}, {hi}]; use a "
                        f"high of {lo + (hi - lo) // step * step} or another step")
    return {"kind": kind, "low": lo, "high": hi, "step": step}


@functools.cache
def _adapter(name: str) -> TypeAdapter:
    info = SETTINGS[name]
    return TypeAdapter(Annotated[info.annotation, info])


def _check_value(where: str, name: str, value: Any) -> None:
    try:
        _adapter(name).validate_python(value)
    except ValidationError as err:
        msg = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise UserError(f"{where}: value {shorten(value)} is not valid for {name}: {msg}") \
            from None


def load(
    search: Any, base: Path | None = None, fixed: dict[str, Any] | None = None
) -> SearchSpace:
    """Build a space from a path, a mapping, or ``{include: PATH, ...overrides}``.

    An override of ``null`` drops that setting from an included space. ``fixed`` are the
    settings of the ``render:`` section: a setting may not be both fixed and searched.
    """
    spec = _resolve(search, base)
    dists = [parse_dist(name, s) for name, s in spec.items()]
    both = sorted(set(fixed or {}) & {d.name for d in dists})
    if both:
        raise UserError(f"render.{both[0]} is both fixed (render:) and searched (search:); "
                        "remove it from one of them")
    return SearchSpace(dists, spec)


def _resolve(search: Any, base: Path | None) -> dict[str, Any]:
    if search is None:
        return {}
    if isinstance(search, str):
        return yamlfile.read(find_file(search, base))
    if not isinstance(search, dict):
        raise UserError(f"search: expected a path or a mapping, got {type(search).__name__}")
    spec = dict(search)
    include = spec.pop("include", None)
    if include is not None and not isinstance(include, str):
        raise UserError(f"search.include: expected the path of a space file, got "
                        f"{shorten(include)}")
    merged = yamlfile.read(find_file(include, base)) if include else {}
    merged.update(spec)
    return {k: v for k, v in merged.items() if v is not None}


def find_file(path: str, base: Path | None) -> Path:
    """A shipped space by name (``tence2016``, ``lucid``, ``readable``), or a file as given
    (relative to the working folder) or relative to the config's folder."""
    check_path(path, "search")
    found = files.find(path, (base, base.parent) if base else (), shipped=SHIPPED)
    if found is not None:
        return found
    names = ", ".join(sorted(f.stem for f in SHIPPED.glob("*.yaml")))
    where = f" (looked in the working folder and in {base})" if base else ""
    raise UserError(f"search: space file {shorten(path)} does not exist{where}; shipped "
                    f"spaces: {names}")
