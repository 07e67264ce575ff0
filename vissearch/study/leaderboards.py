"""Leaderboards: a study as a pandas DataFrame, best trial first. No TensorFlow.

The DataFrame is a view computed from the study each time; the study stays the only source of
truth. Columns: ``number``, ``state``, the objectives, ``score_*`` for every score, one column per
searched param (named as in the search space), ``grid_png`` (the trial's grid,
``results/NAME/trials/NNNN/grid.png``, when it is on disk), ``n_images``, ``duration_s`` (the
trial's share of its population's render: trials that render together split its time),
``wall_s`` (from asked to told: the whole population's time, for each of its trials), ``seed``
and ``error``.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable

import numpy as np
import optuna
import pandas as pd

from vissearch.study import objectstore, store

READERS = store.READERS  # readers' figures: columns only where some trial has them

def leaderboard(
    study: optuna.Study | str,
    storage: str | None = None,
    state: str | Iterable[str] | None = None,
    results: str = "results",
) -> pd.DataFrame:
    """One row per trial, best first.

    Args:
        study: an Optuna study, or the name of one.
        storage: the storage URL when ``study`` is a name (default: results/NAME.db).
        state: keep only trials in this state or these states (``"COMPLETE"``, ``"FAIL"``, ...).
        results: the results folder when ``study`` is a name and ``storage`` is None.

    Example:
        >>> df = leaderboard("quickstart")
        >>> df.head(5)[["number", "activation", "lr", "grid_png"]]
    """
    if isinstance(study, str):
        study = store.open_study(study, storage, results)
    objectives = _objective_names(study)
    df = study.trials_dataframe(attrs=("number", "state", "duration", "params"))
    if df.empty:
        return pd.DataFrame(columns=["number", "state", *objectives, "grid_png", "duration_s",
                                     "wall_s"])
    df = df.rename(columns=lambda c: c.removeprefix("params_"))
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    extra = [_trial_columns(study, trials[n], objectives) for n in df["number"]]
    df = pd.concat([df, pd.DataFrame(extra, index=df.index)], axis=1)
    df["wall_s"] = df.pop("duration").dt.total_seconds()
    share = [trials[n].user_attrs.get("render_seconds") for n in df["number"]]
    df["duration_s"] = [w if v is None else v for v, w in zip(share, df["wall_s"], strict=True)]
    if state is not None:
        wanted = {state} if isinstance(state, str) else set(state)
        df = df[df["state"].isin({s.upper() for s in wanted})]
    df = _best_first(df, study)
    params = [c for c in df.columns if c not in _fixed_columns(df, objectives)]
    first = ["number", "state", *objectives, *(c for c in READERS if c in df.columns)]
    scores = sorted(c for c in df.columns if c.startswith("score_"))
    tail = ["grid_png", "n_images", "duration_s", "wall_s", "seed", "error"]
    out = df[first + scores + params + tail].reset_index(drop=True)
    out.attrs.update(objectives=objectives, params=params, targets=_targets(trials.values()))
    return out


def _targets(trials) -> dict[str, str]:
    """Target index -> what its grid cell is labelled (a class name, or the index)."""
    for t in trials:
        captions = t.user_attrs.get("images", {}).get("captions")
        if captions:
            return dict(captions)
    return {}


def _objective_names(study: optuna.Study) -> list[str]:
    cfg = study.user_attrs.get("config", {})
    names = cfg.get("study", {}).get("objective", "activation")
    return [names] if isinstance(names, str) else list(names)


def _fixed_columns(df: pd.DataFrame, objectives: list[str]) -> set[str]:
    base = {"number", "state", "grid_png", "n_images", "duration_s", "wall_s", "seed", "error",
            *READERS}
    return base | set(objectives) | {c for c in df.columns if c.startswith("score_")}


def _trial_columns(study, trial: optuna.trial.FrozenTrial, objectives: list[str]) -> dict:
    attrs = trial.user_attrs
    row: dict = {}
    values = trial.values or [np.nan] * len(objectives)
    for name, value in zip(objectives, values, strict=True):
        row[name] = value
    for name, value in attrs.get("scores", {}).items():
        row[f"score_{name}"] = value
    images = attrs.get("images", {})
    grid = store.trial_file(study, images, "grid")
    row["grid_png"] = str(grid) if grid else None
    remote = objectstore.is_remote(study.user_attrs.get("artifacts"))
    row["n_images"] = len(images.get("targets", {})) if remote else sum(
        store.trial_file(study, images, key) is not None for key in images.get("targets", {}))
    row["seed"] = attrs.get("seed")
    row["error"] = attrs.get("error")
    row.update({k: attrs[k] for k in READERS if k in attrs})
    return row


def _best_first(df: pd.DataFrame, study: optuna.Study) -> pd.DataFrame:
    """Completed trials in :func:`vissearch.study.store.ranked` order, then the rest by number."""
    rank = df["number"].map({t.number: i for i, t in enumerate(store.ranked(study))})
    done = rank.notna()
    return pd.concat([df[done].iloc[np.argsort(rank[done].to_numpy(), kind="stable")],
                      df[~done].sort_values("number")])


def shared_settings(df: pd.DataFrame, top: int) -> list[str]:
    """What the top completed trials have in common, one line per searched param."""
    done = df[df["state"] == "COMPLETE"]
    best = done.head(top)
    if best.empty:
        return []
    lines = []
    for p in df.attrs.get("params", []):
        col = best[p].dropna()
        if col.empty:
            continue
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        where = f"; set in {len(col)} of {len(best)}" if len(col) < len(best) else ""
        if numeric and col.nunique() > 1:
            lines.append(f"{p}: {col.min():.4g} .. {col.max():.4g} (median {col.median():.4g}; "
                         f"all trials {done[p].min():.4g} .. {done[p].max():.4g}{where})")
        else:
            shown = col.map("{:.4g}".format) if numeric else col.astype(str)
            counts = shown.value_counts()
            lines.append(f"{p}: {counts.index[0]} in {counts.iloc[0]} of {len(best)}"
                         + (f" (the others do not use {p})" if where else ""))
    return lines


def styled(df: pd.DataFrame, width: int = 96):
    """The leaderboard for a notebook: a pandas Styler with each trial's grid as a thumbnail.

    The images are embedded (base64), so the view works wherever the notebook is opened. The
    plain DataFrame stays the API; this is only how it looks.

    Example:
        >>> styled(leaderboard("quickstart").head(10))
    """
    import base64

    def thumb(path) -> str:
        if not isinstance(path, str):
            return ""
        data = base64.b64encode(open(path, "rb").read()).decode("ascii")
        return (f'<img src="data:image/png;base64,{data}" width="{width}" '
                'style="image-rendering:pixelated">')

    shown = df.copy()
    shown.insert(2, "image", shown["grid_png"])
    floats = list(shown.select_dtypes("float").columns)
    text = [c for c in shown.columns if c not in floats and c != "image"]
    return (shown.style.format({"image": thumb})
            .format("{:.4g}", subset=floats, na_rep="")
            .format(subset=text, escape="html", na_rep=""))


def importance_target(study: optuna.Study, index: int = 0):
    """The objective as Optuna's importance evaluators want it: PED-ANOVA asks what makes a
    *low* target, so a maximized objective is negated (its best trials are the low ones)."""
    sign = -1.0 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return lambda t: sign * t.values[index]


@contextlib.contextmanager
def quiet_importances():
    """PED-ANOVA warns that it ranks what makes the target low (it does, now that the target
    has the study's direction) and when a setting has few trials: not the reader's news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*computes the importances of params")
        warnings.filterwarnings("ignore", message="Some regimes for parameter")
        yield


def importances(study: optuna.Study, index: int = 0) -> dict[str, float]:
    """How much each setting matters for the study's best values of objective ``index``, in the
    study's own direction (Optuna's default evaluator, PED-ANOVA)."""
    with quiet_importances():
        return optuna.importance.get_param_importances(study,
                                                       target=importance_target(study, index))
