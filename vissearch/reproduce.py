"""Render a stored trial again from its settings and seed, and compare the bytes.

A trial's images depend only on its settings and seed (never on the trials that shared its
batch), so on the same machine they come out identical to the ones the study stored; a trial
stopped early (pruned at a rung, or by its pruner) is rendered up to the same step.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from vissearch import models, runconfig, store
from vissearch.config import RenderSettings, parse
from vissearch.errors import UserError
from vissearch.imageio import write_png
from vissearch.render import render


def reproduce(study: optuna.Study, which: str, out: Path):
    """Re-render trial ``which`` (``best`` or a number) into ``out``.

    Returns the trial, its settings and, per image file, whether its bytes equal the stored
    artifact's.
    """
    cfg = runconfig.from_mapping(study.user_attrs["config"], None)
    trial = store.find_trial(study, which)
    if "settings" not in trial.user_attrs or "images" not in trial.user_attrs:
        raise UserError(f"trial {trial.number} recorded no images (state {trial.state.name})")
    settings = parse(RenderSettings, trial.user_attrs["settings"], where=f"trial {trial.number}")
    stopped = trial.user_attrs.get("stopped", {}).get("step")
    loaded = models.load_for(cfg.model, cfg.target)
    result = render(loaded, cfg.target, settings, stop_at=stopped)
    ids = trial.user_attrs["images"]
    same = {}
    for name, image in result.files().items():
        path = write_png(Path(out) / name, image)
        key = name.removeprefix("target_").removesuffix(".png")
        aid = ids.get("grid") if name == "grid.png" else ids.get("targets", {}).get(key)
        stored = store.artifact_path(study, aid)
        same[name] = stored is not None and stored.read_bytes() == path.read_bytes()
    return trial, settings, same
