"""The commands of ``python -m vissearch``: one table, each entry its arguments and its handler.

Adding a command is one :class:`Command` in :data:`COMMANDS` (plus its test and a README line);
:mod:`vissearch.cli` builds the parser and the help from the table. Handlers import what they
need when they run, so ``leaderboard`` never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vissearch import quiet
from vissearch.readers import command as readers_command

STORAGE_ENV = "VISSEARCH_STORAGE"


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    example: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace], int]
    needs_tensorflow: bool = False


def _config_and_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="the run config (YAML)")
    p.add_argument("--storage", default=os.environ.get(STORAGE_ENV),
                   help="the study's Optuna storage URL, e.g. postgresql://user@host/db; "
                        f"overrides study.storage (default: ${STORAGE_ENV}, which keeps a "
                        "password out of the process list)")


def _study(args: argparse.Namespace):
    from vissearch import runconfig
    from vissearch.study import store

    cfg = runconfig.load(args.config, storage=args.storage)
    return cfg, store.open_study(cfg.study.name, cfg.study.storage, cfg.study.results)


# run ---------------------------------------------------------------------------------------

def _run_arguments(p: argparse.ArgumentParser) -> None:
    _config_and_storage(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, default=1,
                   help="processes on this machine sharing the study (default 1)")
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--budget", type=int, default=None, help=argparse.SUPPRESS)


def _run(args: argparse.Namespace) -> int:
    from vissearch import runconfig, runner
    from vissearch.study import store
    from vissearch.study.leaderboards import leaderboard

    cfg = runconfig.load(args.config, storage=args.storage)
    if args.worker_index:
        runner.run(cfg, worker=args.worker_index, progress=False, budget_trials=args.budget)
        return 0
    study = runner.run_workers(cfg, args.workers, progress=not args.no_progress)
    df = leaderboard(study)
    counts = ", ".join(f"{n} {s.lower()}" for s, n in df["state"].value_counts().items())
    print(f"study {cfg.study.name}: {len(df)} trials ({counts}); storage "
          f"{store.shown(store.storage_url(cfg.study))}")
    if (df["state"] == "COMPLETE").any():
        best = df.iloc[0]
        values = ", ".join(f"{o} {best[o]:.4g}" for o in df.attrs["objectives"])
        print(f"best trial {int(best['number'])} ({values}): {best['grid_png']}")
    print("\n".join(next_lines(args.config, args.storage)))
    return 0


def next_lines(config: str, storage: str | None) -> list[str]:
    """The commands to look further. ``--storage`` appears only when it was given on the command
    line, its password hidden: one that came from $VISSEARCH_STORAGE is found there again, and a
    pasted ``--storage '...:***@...'`` would override it and fail."""
    from vissearch.study import store

    config = shlex.quote(config)
    given = storage and storage != os.environ.get(STORAGE_ENV)
    extra = f" --storage {shlex.quote(store.shown(storage))}" if given else ""
    return ["next:", f"  python -m vissearch leaderboard {config}{extra}",
            f"  python -m vissearch report {config}{extra} --out out/report",
            f"  python -m vissearch reproduce {config}{extra} --trial best --out out/best"]


# leaderboard, report, dashboard, reproduce --------------------------------------------------

def _leaderboard_arguments(p: argparse.ArgumentParser) -> None:
    _config_and_storage(p)
    p.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    p.add_argument("--csv", help="also write the whole leaderboard to this CSV file")
    p.add_argument("--state", help="only trials in this state (COMPLETE, FAIL, PRUNED, ...)")


def _leaderboard(args: argparse.Namespace) -> int:
    import pandas as pd

    from vissearch.study.leaderboards import READERS, leaderboard, shared_settings

    _, study = _study(args)
    df = leaderboard(study, state=args.state)
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.csv, index=False)
    readers = [c for c in READERS if c in df.columns and c != "readers_confident"]
    shown = ["number", "state", *df.attrs["objectives"], *readers, *df.attrs["params"],
             "duration_s"]
    targets = df.attrs.get("targets", {})
    if targets:
        names = [k if v == k else f"{k} {v}" for k, v in targets.items()]
        print(f"targets: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}")
    with pd.option_context("display.width", 200, "display.max_columns", 40,
                           "display.float_format", "{:.4g}".format):
        print(df[shown].head(args.top).to_string(index=False))
    lines = shared_settings(df, min(args.top, 5))
    if lines:
        print(f"\nsettings of the top {min(args.top, 5)} completed trials:")
        print("\n".join("  " + line for line in lines))
    if args.csv:
        print(f"\nwrote {len(df)} rows to {args.csv}")
    return 0


def _report_arguments(p: argparse.ArgumentParser) -> None:
    _config_and_storage(p)
    p.add_argument("--out", required=True, help="output folder (index.html and images)")


def _report(args: argparse.Namespace) -> int:
    from vissearch.study import report

    _, study = _study(args)
    index = report.build(study, args.out, config_path=args.config)
    print(f"wrote {index} (open it in a browser; it needs no server)")
    return 0


def _dashboard_arguments(p: argparse.ArgumentParser) -> None:
    _config_and_storage(p)
    p.add_argument("--port", type=int, default=8080,
                   help="port on 127.0.0.1 to serve on (default 8080)")
    p.add_argument("--rate", action="store_true",
                   help="add a form to each trial: can you name what its images show? "
                        "(named / partly / not, kept as the trial's readers_rating)")


def _dashboard(args: argparse.Namespace) -> int:
    from optuna_dashboard import run_server

    from vissearch.study import store

    cfg, study = _study(args)
    artifacts = store.artifact_store(study)
    url = store.storage_url(cfg.study)
    if args.rate:
        from vissearch.study.ratings import add_rating_form

        storage = add_rating_form(cfg.study.name, url)
    else:
        storage = store.make_storage(url)
    print(f"optuna-dashboard for study {cfg.study.name}: http://127.0.0.1:{args.port}/ "
          "(Ctrl-C stops it)", flush=True)
    run_server(storage, host="127.0.0.1", port=args.port, artifact_store=artifacts)
    return 0


def _reproduce_arguments(p: argparse.ArgumentParser) -> None:
    _config_and_storage(p)
    p.add_argument("--trial", default="best", help="best (default) or a trial number")
    p.add_argument("--out", required=True, help="output folder")


def _reproduce(args: argparse.Namespace) -> int:
    import yaml

    from vissearch.reproduce import reproduce
    from vissearch.settings.config import changed

    _, study = _study(args)
    out = Path(args.out)
    trial, settings, same = reproduce(study, args.trial, out, progress=True)
    identical = sum(same.values())
    print(f"trial {trial.number}: wrote {len(same)} images to {out}; "
          f"{identical} of {len(same)} identical to the stored ones")
    for name, ok in same.items():
        if not ok:
            print(f"  differs: {name}")
    block = {**changed(settings.model_dump()), "seed": settings.seed}
    print("\n# paste into a config's render: section\n" +
          yaml.safe_dump({"render": block}, sort_keys=True))
    return 0 if identical == len(same) else 1


def _apply_arguments(p: argparse.ArgumentParser) -> None:
    _config_and_storage(p)
    p.add_argument("--trial", default="best", help="best (default) or a trial number")
    p.add_argument("--indices", help="other targets: START:STOP, 3,7,130 or class names "
                                     "(default: the config's)")
    p.add_argument("--layer", help="another layer (default: the config's)")
    p.add_argument("--size", type=int, help="another image size in pixels")
    p.add_argument("--out", required=True, help="output folder")


def _apply(args: argparse.Namespace) -> int:
    from vissearch import runconfig
    from vissearch.apply import apply

    cfg = runconfig.load(args.config, storage=args.storage)
    out = Path(args.out)
    result = apply(cfg, args.trial, out, args.indices, args.layer, args.size)
    print(f"wrote {len(result.indices)} images and the grid to {out}/apply.png, "
          f"{out}/apply/ ({result.dead.sum()} dead, {result.failed.sum()} failed, "
          f"{result.seconds:.0f}s)")
    return 0


def _tune_arguments(p: argparse.ArgumentParser) -> None:
    _config_and_storage(p)
    p.add_argument("--out", required=True, help="output folder (recipe.yaml, grids, table)")
    p.add_argument("--recipe", help="write the recipe here instead, keeping the entries of "
                                    "other layers that the file already has")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _tune(args: argparse.Namespace) -> int:
    from vissearch.tune import tune

    tune(args.config, args.out, progress=not args.no_progress, storage=args.storage,
         into=args.recipe)
    return 0


# render, layers, zoo ------------------------------------------------------------------------

def _render_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="an experiment file (YAML)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--only", help="render only the run with this name")


def _render(args: argparse.Namespace) -> int:
    from vissearch import experiment

    experiment.render_file(args.file, args.out, only=args.only)
    return 0


def _layers_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a keras.applications name, zoo/NAME, a .keras/.h5 file or an "
                                 ".onnx file")
    p.add_argument("--weights", default="none",
                   help="imagenet | hed | none | PATH (default none)")


def _layers(args: argparse.Namespace) -> int:
    from vissearch.models import resolve as models
    from vissearch.settings.config import ModelSpec, parse

    is_file = args.model.endswith((".keras", ".h5", ".hdf5", ".onnx"))
    key = "onnx" if args.model.endswith(".onnx") else "path"  # ONNX: converted once, cached
    spec = parse(ModelSpec, {key: args.model} if is_file else
                 {"name": args.model, "weights": args.weights})
    loaded = models.load(spec, with_classifier=True if is_file else spec.weights != "hed")
    print_layers(loaded)
    return 0


def print_layers(loaded, original: dict[str, str] | None = None) -> None:
    """The table of ``layers``; with ``original``, each layer's ONNX node beside it."""
    from vissearch.models import resolve as models

    rows = models.layer_table(loaded.model)
    width = max(len(r[0]) for r in rows)
    mode, meanings = loaded.preprocess.mode, loaded.preprocess.MEANINGS
    print(f"{loaded.label}: {len(rows)} layers, preprocessing {mode}"
          f"{' (' + meanings[mode] + ')' if mode in meanings else ''}")
    extra = "  onnx node" if original else ""
    print(f"{'layer':<{width}}  {'type':<22} {'output shape':<26} channels{extra}")
    for name, kind, shape, channels in rows:
        line = f"{name:<{width}}  {kind:<22} {shape:<26} {'' if channels is None else channels}"
        print(f"{line:<{width + 59}}  {original.get(name, '')}".rstrip() if original else line)


def _convert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX file (PyTorch: torch.onnx.export)")
    p.add_argument("--out", required=True, help="the Keras file to write (.keras)")
    p.add_argument("--size", type=int, help="the image side to check at, for an ONNX file "
                                            "with dynamic height and width")
    p.add_argument("--tolerance", type=float, default=None,
                   help="largest difference from onnxruntime accepted (default 1e-3)")


def _convert(args: argparse.Namespace) -> int:
    import math

    from vissearch.errors import UserError
    from vissearch.imageio import Preprocess
    from vissearch.models import onnxconvert
    from vissearch.models.loaded import LoadedModel

    tolerance = onnxconvert.TOLERANCE if args.tolerance is None else args.tolerance
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise UserError(f"--tolerance {args.tolerance}: give a positive number, e.g. 1e-3")
    if args.size is not None and not 8 <= args.size <= 4096:
        raise UserError(f"--size {args.size}: give a side from 8 to 4096 pixels")
    if not str(args.out).endswith(".keras"):
        raise UserError(f"--out {args.out!r}: expected a .keras file name")
    done = onnxconvert.checked(args.model, args.size, tolerance)
    out = onnxconvert.save(done, args.out)
    size = f"{done.fixed_size} px only" if done.fixed_size else "any size"
    print(f"converted {args.model} in {done.seconds:.1f}s (onnx2keras): input NHWC, {size}; "
          f"largest difference from onnxruntime {done.difference:.3g} on "
          f"{onnxconvert.SAMPLES} random {done.size} px inputs (tolerance {tolerance:g})")
    print_layers(LoadedModel(done.model, Preprocess.named("none"), out.name), done.original)
    outputs = done.model.outputs[0].shape[-1]
    print(f"wrote {out}; in a config: model: {{path: {out}, preprocess: torch}} (torch: "
          "ImageNet-normalized input, as torchvision's models; none, unit or tf otherwise)"
          + ("; class names: model.classes: imagenet (model.onnx gives 1000 outputs ImageNet's)"
             if outputs == 1000 else "; class names: model.classes: FILE, one a line"))
    return 0


def _zoo_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="zoo_command", required=True)
    train = sub.add_parser("train", help="retrain a zoo model and its judge, deterministically")
    train.add_argument("name", choices=["shapes"],
                       help="the zoo model to retrain (with its judge): shapes")
    train.add_argument("--out", help="folder for the .keras files (default: the package's own)")
    sub.add_parser("list", help="list the zoo models")


def _zoo(args: argparse.Namespace) -> int:
    from vissearch.models import zoo

    if args.zoo_command == "list":
        for name, entry in zoo.ZOO.items():
            print(f"{name:<24} {entry.about}; weights: {zoo.source(name)}")
        return 0
    quiet.import_tensorflow(args.debug)
    from vissearch.models.zoo import train

    out = Path(args.out) if args.out else zoo.WEIGHTS
    out.mkdir(parents=True, exist_ok=True)
    for name in (args.name, f"{args.name}-judge"):
        print(f"training zoo/{name} ...", flush=True)
        model, accuracy, seconds = train.train(name, verbose=2)
        path = out / f"{name}.keras"
        model.save(path)
        print(f"zoo/{name}: held-out accuracy {accuracy:.2%} in {seconds:.0f}s -> {path}")
    return 0


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("run", "run (or resume) the search of a config",
            "python -m vissearch run configs/quickstart.yaml", _run_arguments, _run, True),
    Command("leaderboard", "print a study's trials, best first",
            "python -m vissearch leaderboard configs/quickstart.yaml --top 5",
            _leaderboard_arguments, _leaderboard),
    Command("report", "write a static HTML report of a study",
            "python -m vissearch report configs/quickstart.yaml --out out/report",
            _report_arguments, _report),
    Command("reproduce", "render a stored trial again and compare the bytes",
            "python -m vissearch reproduce configs/quickstart.yaml --trial best --out out/best",
            _reproduce_arguments, _reproduce, True),
    Command("apply", "render a stored trial's settings on other targets",
            "python -m vissearch apply configs/quickstart.yaml --trial best --indices 0:11 "
            "--size 128 --out out", _apply_arguments, _apply, True),
    Command("tune", "search each layer in turn and write a recipe of the best settings",
            "python -m vissearch tune configs/tune_lite0_blocks.yaml --out out/tune_lite0",
            _tune_arguments, _tune, True),
    Command("dashboard", "start optuna-dashboard on 127.0.0.1 with the images",
            "python -m vissearch dashboard configs/quickstart.yaml --port 8080",
            _dashboard_arguments, _dashboard),
    Command("render", "render an experiment file (fixed settings)",
            "python -m vissearch render experiments/lite0_filters.yaml --out out/lite0",
            _render_arguments, _render, True),
    Command("layers", "list a model's layers, output shapes and channels",
            "python -m vissearch layers zoo/efficientnet-lite0", _layers_arguments, _layers,
            True),
    Command("readers", "a blind naming sheet of renders, and readers' answers scored",
            "python -m vissearch readers make configs/quickstart.yaml --out out/sheet",
            readers_command.arguments, readers_command.handler),
    Command("convert", "convert an ONNX model (e.g. from PyTorch) to Keras, checked",
            "python -m vissearch convert my_model.onnx --out my_model.keras",
            _convert_arguments, _convert, True),
    Command("zoo", "list or retrain the models that ship with vissearch",
            "python -m vissearch zoo list", _zoo_arguments, _zoo),
)}
