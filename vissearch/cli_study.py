"""Study commands: ``run``, ``leaderboard`` and ``reproduce``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from vissearch.cli import command
from vissearch.errors import UserError


def add_parsers(sub) -> None:
    r = sub.add_parser("run", help="run (or resume) the random search of a config")
    r.add_argument("config")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--workers", type=int, default=1,
                   help="processes on this machine sharing the study (default 1)")
    r.add_argument("--storage", help="Optuna storage URL, e.g. postgresql://user@host/db; "
                                     "overrides study.storage so machines can share a study")
    r.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    r.add_argument("--budget", type=int, default=None, help=argparse.SUPPRESS)

    lb = sub.add_parser("leaderboard", help="print a study's trials, best first")
    lb.add_argument("config")
    lb.add_argument("--top", type=int, default=10, help="rows to print (default 10)")
    lb.add_argument("--csv", help="also write the whole leaderboard to this CSV file")
    lb.add_argument("--state", help="only trials in this state (COMPLETE, FAIL, PRUNED, ...)")

    rep = sub.add_parser("report", help="write a static HTML report of a study")
    rep.add_argument("config")
    rep.add_argument("--out", required=True, help="output folder (index.html and images)")

    db = sub.add_parser("dashboard", help="start optuna-dashboard on 127.0.0.1 with the images")
    db.add_argument("config")
    db.add_argument("--port", type=int, default=8080)

    rp = sub.add_parser("reproduce", help="render a stored trial again from its settings")
    rp.add_argument("config")
    rp.add_argument("--trial", default="best", help="best (default) or a trial number")
    rp.add_argument("--out", required=True, help="output folder")
    for p in (lb, rep, db, rp):
        p.add_argument("--storage", help="the study's storage URL, when run got --storage")


def _spawn_worker(args: argparse.Namespace, index: int, url: str, budget: int):
    cmd = [sys.executable, "-m", "vissearch", "run", args.config, "--no-progress",
           "--worker-index", str(index), "--storage", url, "--budget", str(budget)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def _study(args: argparse.Namespace):
    from vissearch import runconfig, store

    cfg = runconfig.load(args.config, storage=args.storage)
    return cfg, store.open_study(cfg.study.name, cfg.study.storage, cfg.study.results)


@command
def cmd_run(args: argparse.Namespace) -> int:
    import sqlalchemy

    from vissearch import runconfig, runner, store
    from vissearch.leaderboards import leaderboard

    cfg = runconfig.load(args.config, storage=args.storage)
    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: give 1 or more")
    url = store.storage_url(cfg.study.name, cfg.study.storage, cfg.study.results)
    budget = args.budget
    if args.workers > 1:
        study = runner.open_or_create(cfg)  # one process creates the study; the others join
        parts = runner.shares(max(cfg.study.n_trials - runner.counted(study), 0), args.workers)
        budget = parts[0] or None
        others = [_spawn_worker(args, i, url, parts[i]) for i in range(1, args.workers)
                  if parts[i]]
    study = runner.run(cfg, worker=args.worker_index, progress=not args.no_progress,
                       budget=budget)
    if args.workers > 1:
        codes = [p.wait() for p in others]
        if any(codes):
            print(f"workers exited with {codes}", file=sys.stderr)
    if args.worker_index:
        return 0
    df = leaderboard(study)
    counts = df["state"].value_counts().to_dict()
    shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    print(f"study {cfg.study.name}: {len(df)} trials {counts}; storage {shown}; "
          f"images in {study.user_attrs['artifact_dir']}")
    if (df["state"] == "COMPLETE").any():
        best = df.iloc[0]
        objectives = df.attrs["objectives"]
        values = ", ".join(f"{o}={best[o]:.4g}" for o in objectives)
        print(f"best trial {int(best['number'])}: {values} -> {best['grid_png']}")
    print(f"next: python -m vissearch leaderboard {args.config}")
    return 0


@command
def cmd_leaderboard(args: argparse.Namespace) -> int:
    import pandas as pd

    from vissearch.leaderboards import leaderboard, shared_settings

    cfg, study = _study(args)
    df = leaderboard(study, state=args.state)
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(args.csv, index=False)
    shown = ["number", "state", *df.attrs["objectives"], *df.attrs["params"], "duration_s"]
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


@command
def cmd_reproduce(args: argparse.Namespace) -> int:
    from vissearch.config import RenderSettings
    from vissearch.reproduce import reproduce

    _, study = _study(args)
    out = Path(args.out)
    trial, settings, same = reproduce(study, args.trial, out)
    identical = sum(same.values())
    print(f"trial {trial.number}: wrote {len(same)} images to {out}; "
          f"{identical} of {len(same)} identical to the stored ones")
    for name, ok in same.items():
        if not ok:
            print(f"  differs: {name}")
    defaults = RenderSettings().model_dump()
    block = {k: v for k, v in settings.model_dump().items() if v != defaults[k] or k == "seed"}
    print("\n# paste into a config's render: section\n" +
          yaml.safe_dump({"render": block}, sort_keys=True))
    return 0 if identical == len(same) else 1


@command
def cmd_report(args: argparse.Namespace) -> int:
    from vissearch import report

    _, study = _study(args)
    index = report.build(study, args.out, config_path=args.config)
    print(f"wrote {index} (open it in a browser; it needs no server)")
    return 0


@command
def cmd_dashboard(args: argparse.Namespace) -> int:
    from optuna_dashboard import run_server

    from vissearch import store

    cfg, study = _study(args)
    url = store.storage_url(cfg.study.name, cfg.study.storage, cfg.study.results)
    artifacts = store.AtomicArtifactStore(study.user_attrs["artifact_dir"])
    print(f"optuna-dashboard for study {cfg.study.name}: http://127.0.0.1:{args.port}/ "
          "(Ctrl-C stops it)", flush=True)
    run_server(store.make_storage(url), host="127.0.0.1", port=args.port,
               artifact_store=artifacts)
    return 0
