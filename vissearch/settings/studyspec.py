"""A run config's ``study`` section: where the Optuna study lives and how it samples. No
Optuna here: the study side reads these settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from vissearch.errors import shorten
from vissearch.files import check_path
from vissearch.settings import artifacts
from vissearch.settings.config import MAX_INT, _Frozen

MAX_NAME = 100  # characters of a study name (it names a file and a folder)


class HalvingSpec(_Frozen):
    """Successive halving inside a population (vissearch.engine.halving)."""

    rungs: list[float] = Field(default_factory=lambda: [0.125, 0.25, 0.5],
                               description="shares of the steps at which trials are compared")
    keep: float = Field(0.5, gt=0, lt=1, description="share of the trials that go on")

    @field_validator("rungs")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if not v or len(v) > 10 or any(not 0 < f < 1 for f in v):
            raise ValueError(f"rungs are 1 to 10 shares of the steps between 0 and 1, got "
                             f"{shorten(v)}")
        return sorted(v)


STORAGE_SCHEMES = ("sqlite", "postgresql", "mysql")


def is_database(url: str) -> bool:
    """Whether ``url`` names an SQLAlchemy database Optuna can keep a study in
    (``postgresql+psycopg://`` counts as postgresql)."""
    return "://" in url and url.split("://", 1)[0].split("+")[0] in STORAGE_SCHEMES


def safe_name(v: str) -> str:
    """A study name: it names a file and a folder, so no path, no dot first, no odd character."""
    ok = isinstance(v, str) and v and all(c.isascii() and (c.isalnum() or c in "-_.") for c in v)
    if not ok or v.startswith(".") or len(v) > MAX_NAME:
        raise ValueError(f"{shorten(v)} may hold only letters, digits, '-', '_' and '.' "
                         f"(1 to {MAX_NAME} of them, not starting with '.')")
    return v


class StudySpec(_Frozen):
    """The Optuna study: where it lives and how it samples."""

    name: str
    storage: str | None = None
    sampler: Literal["random", "tpe", "qmc", "grid"] = "random"
    seed: int = Field(1337, ge=0, le=MAX_INT)
    n_trials: int = Field(20, ge=1, le=1_000_000)
    timeout: float | None = Field(None, gt=0, le=1e8, description="seconds")
    pruner: Literal["none", "median", "hyperband"] = "none"
    objective: str | list[str] = "activation"
    population: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = Field(
        1, description="trials rendered together in one batch; auto fills a memory budget")
    halving: HalvingSpec | None = None
    results: str = "results"
    warm_start: dict[str, Any] | None = Field(
        None, description="{study: NAME, top: K} or {recipe: NAME}: known settings run first")
    artifacts: str | None = Field(None, description="s3://BUCKET/PREFIX; default results/NAME/")

    @field_validator("artifacts")
    @classmethod
    def _artifacts(cls, v: str | None) -> str | None:
        return None if v is None else artifacts.check_url(v)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        return safe_name(v)

    @field_validator("objective")
    @classmethod
    def _one_or_two(cls, v: str | list[str]) -> str | list[str]:
        names = [v] if isinstance(v, str) else v
        if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
            raise ValueError(f"study.objective takes one score or a list of two different "
                             f"scores, got {shorten(v)}")
        return v

    @field_validator("storage")
    @classmethod
    def _storage(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if len(v) > 4096 or "\0" in v or not v.isprintable():
            raise ValueError(f"study.storage {shorten(v)} is not a storage URL")
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if not is_database(v):
            raise ValueError(f"study.storage {shorten(v)}: use sqlite:///PATH.db, "
                             "postgresql://USER@HOST/DB or mysql://USER@HOST/DB")
        if scheme == "sqlite":
            path = v.removeprefix("sqlite:///")
            if v == path or not path:
                raise ValueError(f"study.storage {shorten(v)}: use sqlite:///PATH.db")
            check_path(path, "study.storage")
        return v

    @field_validator("results")
    @classmethod
    def _results(cls, v: str) -> str:
        return check_path(v, "study.results")

    @property
    def objectives(self) -> list[str]:
        return [self.objective] if isinstance(self.objective, str) else list(self.objective)
