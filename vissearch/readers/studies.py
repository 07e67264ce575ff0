"""Readers' figures into the studies their images came from, as trial user attributes."""

from __future__ import annotations

from collections import defaultdict

import optuna

from vissearch.errors import UserError

FIGURES = ("named", "named3", "confident")


def totals(per_sheet: dict[str, dict]) -> dict[str, float | int]:
    """``readers_*`` attributes from the counts of every sheet a trial was on."""
    n = sum(c["n"] for c in per_sheet.values())
    out: dict[str, float | int] = {"readers_n": n}
    for f in FIGURES:
        out[f"readers_{f}"] = sum(c[f] for c in per_sheet.values()) / n if n else float("nan")
    return out


def write_figures(key: dict, rows: list[dict], storage: str | None) -> list[str]:
    """Add this sheet's counts to each trial's ``readers`` attribute (replacing the sheet's own
    counts from an earlier score) and refresh the totals; returns the studies written."""
    from vissearch import runconfig
    from vissearch.study import store

    items = {i["image"]: i for i in key["images"]}
    by_study: dict[tuple[str, str], dict[int, dict]] = defaultdict(dict)
    for row in rows:
        item = items[row["image"]]
        if item.get("study") is None:
            continue
        counts = by_study[(item["config"], item["study"])].setdefault(
            item["trial"], {"n": 0, "images": 0, **dict.fromkeys(FIGURES, 0)})
        counts["images"] += 1
        for k in ("n", *FIGURES):
            counts[k] += int(row[k])
    written = []
    for (config, name), trials in by_study.items():
        cfg = runconfig.load(config, storage=storage)
        if cfg.study.name != name:
            raise UserError(f"{config}: now names study {cfg.study.name!r}, the sheet's images "
                            f"came from {name!r}")
        store.open_study(name, cfg.study.storage, cfg.study.results)  # one line if missing
        storage_obj = store.annotating_storage(store.storage_url(cfg.study))
        study = optuna.load_study(study_name=name, storage=storage_obj)
        frozen = {t.number: t for t in study.get_trials(deepcopy=False)}
        for number, counts in trials.items():
            trial = frozen[number]
            per_sheet = dict(trial.user_attrs.get("readers") or {})
            per_sheet[key["sheet"]] = counts
            storage_obj.set_trial_user_attr(trial._trial_id, "readers", per_sheet)
            for attr, value in totals(per_sheet).items():
                storage_obj.set_trial_user_attr(trial._trial_id, attr, value)
        written.append(name)
    return written
