"""Render a stored trial again from its settings and seed, and compare the bytes.

A trial's start and random transforms depend only on its settings and seed, but a CPU's
convolutions are not batch-invariant bit for bit (the same image in a batch of one and of two
can differ in the last bits). So a trial that rendered in a population is rendered again with
the same population: every member's settings and seed, in the recorded batch order, each
stopping at the step it stopped at (pruned at a rung, by its pruner, or early). On the same
machine the images come out identical to the ones the study stored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna

from vissearch import runconfig
from vissearch.engine.render import Member, render, render_population
from vissearch.errors import UserError
from vissearch.experiment import step_bar
from vissearch.imageio import write_png
from vissearch.models import resolve as models
from vissearch.settings.config import RenderSettings, parse
from vissearch.study import store


def reproduce(study: optuna.Study, which: str, out: Path, progress: bool = False):
    """Re-render trial ``which`` (``best`` or a number) into ``out``.

    Returns the trial, its settings and, per image file, whether its bytes equal the stored
    artifact's.
    """
    cfg = runconfig.from_mapping(study.user_attrs["config"], None)
    trial = store.find_trial(study, which)
    if "settings" not in trial.user_attrs or "images" not in trial.user_attrs:
        raise UserError(f"trial {trial.number} recorded no images (state {trial.state.name})")
    settings = _settings(trial)
    loaded = models.load_for(cfg.model, cfg.target)
    numbers = trial.user_attrs.get("population", [trial.number])
    chunks = 1 if len(numbers) > 1 else -(-len(cfg.target.indices) // settings.batch_size)
    steps = settings.total_steps * settings.candidates * chunks
    bar, moved = step_bar(steps, f"trial {trial.number}" + (
        f" with its population of {len(numbers)}" if len(numbers) > 1 else ""),
        disable=not progress)
    try:
        if len(numbers) > 1:
            trials = {t.number: t for t in study.get_trials(deepcopy=False)}
            members = [dataclasses.replace(_member(trials[n]), callback=moved) for n in numbers]
            result = render_population(loaded, cfg.target, members)[numbers.index(trial.number)]
        else:
            result = render(loaded, cfg.target, settings, callback=moved,
                            stop_at=_stopped(trial)[0])
    finally:
        bar.close()
    ids = trial.user_attrs["images"]
    same = {}
    for key, name, image in result.files():
        path = write_png(Path(out) / name, image)
        aid = ids.get("grid") if key == "grid" else ids.get("targets", {}).get(key)
        stored = store.artifact_path(study, aid)
        same[name] = stored is not None and stored.read_bytes() == path.read_bytes()
    return trial, settings, same


def _settings(trial: optuna.trial.FrozenTrial) -> RenderSettings:
    """The trial's settings as it rendered. A trial stored before ``fold_batchnorm`` existed
    rendered with its network's batch normalizations unfolded."""
    stored = {"fold_batchnorm": False, **trial.user_attrs["settings"]}
    return parse(RenderSettings, stored, where=f"trial {trial.number}")


def _stopped(trial: optuna.trial.FrozenTrial) -> tuple[int | None, str]:
    stopped = trial.user_attrs.get("stopped", {})
    return stopped.get("step"), stopped.get("reason", "")


def _member(trial: optuna.trial.FrozenTrial) -> Member:
    """A population member as it rendered: its settings, stopping where it stopped."""
    if "settings" not in trial.user_attrs:
        raise UserError(f"trial {trial.number} of the population recorded no settings")
    step, reason = _stopped(trial)
    return Member(_settings(trial), stop_at=step, stopped=reason)
