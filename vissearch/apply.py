"""A stored trial's settings on other targets: ``python -m vissearch apply CONFIG``.

A search finds settings on a few targets; ``apply`` renders the chosen trial's settings (its
seed included) on others: all the filters of a layer, another layer, every class, at another
size. The output folder holds the labelled grid ``apply.png``, one PNG per target in
``apply/``, the loss curves and ``apply/summary.json``, which records the study and trial the
settings came from.
"""

from __future__ import annotations

from pathlib import Path

from vissearch import experiment, files, recipes
from vissearch.engine.render import RenderResult
from vissearch.errors import UserError, shorten
from vissearch.models import labels
from vissearch.models import resolve as models
from vissearch.runconfig import RunConfig
from vissearch.settings.config import RenderSettings, merged, parse


def parse_indices(text: str) -> list[int | str] | dict[str, int]:
    """``0:512`` (a range), ``3,7,130`` (numbers) or ``flamingo,pool table`` (class names)."""
    text = text.strip()
    if ":" in text:
        start, _, stop = text.partition(":")
        try:
            return {"start": int(start or 0), "stop": int(stop)}
        except ValueError:
            raise UserError(f"--indices {shorten(text)}: a range is START:STOP, e.g. 0:512") \
                from None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError("--indices is empty; give e.g. 0:64, 3,7,130 or flamingo,pool table")
    return [int(p) if p.isdigit() else p for p in parts]


def apply(cfg: RunConfig, which: str, out: Path, indices: str | None = None,
          layer: str | None = None, size: int | None = None) -> RenderResult:
    """Render trial ``which`` (``best`` or a number) of the config's study on the config's
    target, or on ``indices`` / ``layer`` instead, at ``size`` if given."""
    changes = {} if size is None else {"size": size}
    parse(RenderSettings, changes, where="apply --size")  # every mistake before any work
    target = cfg.target
    update = {} if layer is None else {"layer": layer}
    if layer is not None and target.kind == "class":
        raise UserError(f"--layer {shorten(layer)}: the config's target is kind: class (the "
                        "model's output); --layer is for filter, layer and neuron targets")
    if indices is not None:
        update["indices"] = parse_indices(indices)
    if update:
        target = merged(target, update, where="apply")
        target = labels.resolve_target(target, cfg.model, "apply")
    source = {"study": cfg.study.name, "storage": cfg.study.storage,
              "results": cfg.study.results, "trial": which}
    values, came = recipes.trial_settings(source, "apply")
    settings = parse(RenderSettings, {**values, **changes}, where="apply")
    files.check_writable(out, "--out", folder=True)
    loaded = models.load_for(cfg.model, target)
    desc = f"trial {came['trial']}"
    print(f"apply: settings of trial {came['trial']} of study {cfg.study.name} on "
          f"{len(target.indices)} {target.kind} targets"
          + (f" of {target.layer}" if target.layer else ""), flush=True)
    result = experiment.render_with_progress(loaded, target, settings, desc=desc)
    experiment.write_result(result, out, "apply", {**came, "changed": changes,
                                                   "target": target.model_dump()})
    return result
