"""``python -m vissearch readers make|score``: arguments and handlers (imports happen when they
run, so the command line stays light)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

STORAGE_ENV = "VISSEARCH_STORAGE"


def arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="readers_command", required=True, metavar="make|score|pool")
    make = sub.add_parser("make", help="a blind sheet of uncaptioned images, and its key apart")
    make.add_argument("sources", nargs="+", metavar="[METHOD=]SOURCE",
                      help="a run config (its study's best trials; CONFIG:3,7 names trials) or "
                           "a folder of PNGs named by class (target_0130.png, 130.png, "
                           "flamingo.png); METHOD= names the source in the figures")
    make.add_argument("--out", required=True, help="new folder: OUT/sheet/ for the readers, "
                                                   "OUT/key.json kept apart")
    make.add_argument("--best", type=int, default=4,
                      help="how many of each study's best trials (default 4)")
    make.add_argument("--choices", type=int, default=0,
                      help="forced choice among K names per image (default 0: readers type)")
    make.add_argument("--seed", type=int, default=None,
                      help="the shuffle's seed (default: drawn, and recorded in the key)")
    make.add_argument("--labels", choices=["imagenet", "shapes"], default=None,
                      help="the class names of folders' images when no study says (default "
                           "imagenet)")
    make.add_argument("--storage", default=os.environ.get(STORAGE_ENV),
                      help=f"overrides the studies' storage (default: ${STORAGE_ENV})")
    make.add_argument("--rotate", action="store_true",
                      help="one sheet per rotation, OUT/rotation-K/, each showing every class "
                           "once, its versions rotated across sheets (to compare methods)")
    score = sub.add_parser("score", help="score readers' answers against a sheet's key")
    score.add_argument("key", help="the key.json that readers make wrote")
    score.add_argument("answers", nargs="+",
                       help="answer files: the sheet's saved JSON, or text lines "
                            "'img_NN | guess ; guess ; guess | 2'")
    score.add_argument("--out", default=None,
                       help="folder for figures.md and the CSV tables (default: beside the key)")
    score.add_argument("--no-studies", action="store_true",
                       help="write the tables only, not the studies' trial attributes")
    score.add_argument("--storage", default=os.environ.get(STORAGE_ENV),
                       help=f"overrides the studies' storage (default: ${STORAGE_ENV})")
    pooled = sub.add_parser("pool", help="pool scored sheets (a rotation's) by method and class")
    pooled.add_argument("folders", nargs="+",
                        help="scored sheets: a figures folder, its by_image.csv, or the "
                             "folder holding figures/")
    pooled.add_argument("--out", required=True, help="folder for the pooled tables")


def handler(args: argparse.Namespace) -> int:
    if args.readers_command == "make":
        from vissearch.readers.make import make, make_rotated

        kwargs = dict(best=args.best, seed=args.seed, choices=args.choices,
                      storage=args.storage, label_set=args.labels)
        keys = (make_rotated(args.sources, args.out, **kwargs) if args.rotate
                else [make(args.sources, args.out, **kwargs)])
        for key in keys:
            print(f"sheet: {key.parent / 'sheet' / 'index.html'} (give readers the folder "
                  f"{key.parent / 'sheet'} and nothing else)")
            print(f"key: {key} (keep it from the readers)")
        if len(keys) > 1:
            print("each sheet to other readers; score each key with its own readers' answers, "
                  f"then: python -m vissearch readers pool {Path(args.out) / 'rotation-*'} "
                  "--out FOLDER")
        print(f"then: python -m vissearch readers score {keys[0]} ANSWERS...")
        return 0
    if args.readers_command == "pool":
        from vissearch.readers.score import pool

        tables = pool(args.folders, args.out)
        _print_methods(tables)
        return 0
    from vissearch.readers.score import score

    tables = score(args.key, args.answers, out=args.out, storage=args.storage,
                   write_back=not args.no_studies)
    _print_methods(tables)
    return 0


def _print_methods(tables: dict) -> None:
    print(f"{'method':<28} {'images':>6} {'judged':>6} {'named':>6} {'in 3':>6} {'clear':>6}")
    for row in tables["method"]:
        print(f"{str(row['method'])[:28]:<28} {row['images']:>6} {row['judgments']:>6} "
              f"{row['named']:>6.2f} {row['named3']:>6.2f} {row['confident']:>6.2f}")
