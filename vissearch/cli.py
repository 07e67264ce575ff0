"""Command line: ``python -m vissearch COMMAND``.

A :class:`~vissearch.errors.UserError` prints as one line and exits 2; ``--debug`` shows the
traceback instead. TensorFlow is imported only by the commands that need it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from vissearch.errors import UserError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_")] = fn
    return fn


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vissearch", description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render an experiment file (fixed settings)")
    r.add_argument("file")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--only", help="render only the run with this name")

    ly = sub.add_parser("layers", help="list a model's layers, output shapes and channels")
    ly.add_argument("model", help="a keras.applications name, zoo/NAME, or a .keras/.h5 file")
    ly.add_argument("--weights", default="none",
                    help="imagenet | hed | none | PATH (default none)")

    zo = sub.add_parser("zoo", help="the project's own models")
    zo_sub = zo.add_subparsers(dest="zoo_command", required=True)
    zt = zo_sub.add_parser("train", help="retrain a zoo model and its judge, deterministically")
    zt.add_argument("name", choices=["shapes"])
    zt.add_argument("--out", help="folder for the .keras files (default: the package's own)")
    zo_sub.add_parser("list", help="list the zoo models")

    from vissearch import cli_study

    cli_study.add_parsers(sub)

    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UserError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # Ctrl-C inside a library that re-raised it as its own error
        if not interrupted(err):
            raise
        print("interrupted", file=sys.stderr)
        return 130


def interrupted(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt is anywhere in the exception's cause/context chain."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


@command
def cmd_layers(args: argparse.Namespace) -> int:
    from vissearch import models
    from vissearch.config import ModelSpec, parse

    is_file = args.model.endswith((".keras", ".h5", ".hdf5"))
    spec = parse(ModelSpec, {"path": args.model} if is_file else
                 {"name": args.model, "weights": args.weights})
    loaded = models.load(spec, with_classifier=True if is_file else spec.weights != "hed")
    rows = models.layer_table(loaded.model)
    width = max(len(r[0]) for r in rows)
    print(f"{loaded.label}: {len(rows)} layers, preprocessing {loaded.preprocess.mode}")
    print(f"{'layer':<{width}}  {'type':<22} {'output shape':<26} channels")
    for name, kind, shape, channels in rows:
        print(f"{name:<{width}}  {kind:<22} {shape:<26} {'' if channels is None else channels}")
    return 0


@command
def cmd_render(args: argparse.Namespace) -> int:
    from vissearch import experiment

    experiment.render_file(args.file, args.out, only=args.only)
    return 0


@command
def cmd_zoo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from vissearch import zoo

    if args.zoo_command == "list":
        for name in zoo.NAMES:
            print(f"{name}  {zoo.weights_file(name)}")
        return 0
    from vissearch.zoo import train

    out = Path(args.out) if args.out else zoo.WEIGHTS
    out.mkdir(parents=True, exist_ok=True)
    for name in (args.name, f"{args.name}-judge"):
        print(f"training zoo/{name} ...", flush=True)
        model, accuracy, seconds = train.train(name, verbose=2)
        path = out / f"{name}.keras"
        model.save(path)
        print(f"zoo/{name}: held-out accuracy {accuracy:.2%} in {seconds:.0f}s -> {path}")
    return 0
