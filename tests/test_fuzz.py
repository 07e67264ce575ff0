"""Hostile configs: seeded random mutations of real configs go through run's loading path, and
every one is accepted, or refused with the project's one-line error, without hanging. An
accepted config's space must draw valid settings (16 draws each): no study that can only fail.

The hang guard (``HANG``, 30 s a mutation) is not a speed figure: a YAML bomb or a range of
10**9 that were expanded would run for minutes, while an honest mutation loads in about a
second. How long loading takes is measured in ``bench/fuzz_load.py`` against the unmutated
configs, side by side (docs/bench.md).

CI runs 300 mutations; ``VISSEARCH_FUZZ=5000 python -m pytest tests/test_fuzz.py`` runs the
slow mode (the ``slow`` test, skipped otherwise).
"""

import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from vissearch import runconfig, runner
from vissearch.errors import UserError
from vissearch.models import resolve as models
from vissearch.study import store

ROOT = Path(__file__).resolve().parent.parent
SPACE = str(ROOT / "searchspace/tence2016.yaml")


def bases(tmp) -> list[dict]:
    res = str(tmp / "res")
    return [
        {"study": {"name": "quick", "n_trials": 24, "objective": ["transfer", "activation"],
                   "results": res},
         "model": {"name": "zoo/shapes"},
         "target": {"kind": "class", "indices": {"start": 0, "stop": 11}},
         "render": {"size": 64, "steps": 160}, "search": SPACE},
        {"study": {"name": "vgg", "n_trials": 10, "sampler": "grid", "results": res},
         "model": {"name": "VGG16", "weights": "hed"},
         "target": {"kind": "filter", "layer": "block3_conv1", "indices": {"start": 0, "stop": 8}},
         "render": {"size": 64, "steps": 40},
         "search": {"median_size": {"choice": [0, 3, 5]},
                    "median_every": {"int": [4, 12], "step": 4, "when": {"median_size": [3, 5]}},
                    "blur_sigma": {"choice": [0.0, 0.5]}}},
        {"study": {"name": "lucid", "n_trials": 5, "results": res},
         "model": {"name": "zoo/shapes"},
         "target": {"kind": "class", "indices": ["circle", "ring"]},
         "render": {"size": 32, "steps": 20},
         "search": {"include": str(ROOT / "searchspace/lucid.yaml"), "tv": None}},
    ]


def junk(rng, tmp) -> object:
    pool = [None, True, False, 0, -1, 1, 3, 255, 2**31, 2**64, 1e20, float("inf"),
            float("-inf"), float("nan"), 0.5, -0.5, "", "x", "a\nb", "a\0b", "é", "x" * 300,
            "../x", [], [3], [0, 0], {}, {"stop": None}, {"stop": [3]}, {"stop": float("inf")},
            {"stop": 10**9}, {"start": 0, "stop": 10**6}, {"include": 5}, {"a": 1},
            {"uniform": [0, float("inf")]}, {"int": [0, 10**9]}, {"choice": []},
            {"log_uniform": [0.0, 1.0]}, {"uniform": [0, 5]}, {"choice": [1, 2], "or_zero": True},
            {"uniform": [1, 2], "or_zero": "false"}, "abc", "redis://localhost",
            f"sqlite:///{tmp}/missing/dir/x.db", f"sqlite:///{tmp}/not-a-db.db",
            str(tmp / "a-file"), "/proc/cannot-write-here", "fourier", "image", "best", "plain",
            "transfer", ["transfer"], [], "grid", "qmc", "hyperband", "auto", "block3_conv9",
            "zoo/shape", "VGG61", "flamingo", ["flamingo", "ring"], 20, 1000, 10**6,
            # plausible values, so that many mutants are accepted and their spaces drawn from
            0.1, 2.0, 4, 8, 16, 32, 64, 0.9, "sgd", "adam", "cosine", "gaussian", "mean",
            {"uniform": [0.1, 0.9]}, {"int": [1, 8]}, {"choice": [0, 3]}, [0.25, 0.5],
            # past a float's range, a dunder name, sizes and counts that cannot fit (#18)
            10**400, -(10**400), {"int": [0, 10**400]}, {"log_uniform": [1, 10**400]},
            "__class__", "__init__", 4096, 65_536, 100_000, {"stop": 65_536}]
    return copy.deepcopy(pool[rng.integers(len(pool))])


def leaves(node, path=()):
    """Every (path, value) inside nested dicts and lists."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from leaves(v, (*path, i))


def mutate(cfg: dict, rng, tmp) -> dict:
    cfg = copy.deepcopy(cfg)
    if isinstance(cfg.get("search"), str) and rng.random() < 0.5:  # mutate the space inline too
        cfg["search"] = yaml.safe_load(open(cfg["search"], encoding="utf-8"))
    for _ in range(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])):
        spots = [(p, v) for p, v in leaves(cfg) if p]
        path, _ = spots[rng.integers(len(spots))]
        *parents, last = path
        node = cfg
        for key in parents:
            node = node[key]
        op = rng.integers(7)
        value = node[last]
        if op >= 4 and isinstance(value, int | float) and not isinstance(value, bool):
            node[last] = type(value)(value * rng.choice([0.5, 2, 3]))  # a plausible nudge
        elif op >= 4 and isinstance(value, bool):
            node[last] = not value
        elif op == 0 and isinstance(node, dict):
            del node[last]
        elif op == 1 and isinstance(node, dict):
            node[f"{last}x" if rng.random() < 0.5 else "extra\nkey"] = junk(rng, tmp)
        elif op == 2:
            node[last] = [node[last]]
        else:
            node[last] = junk(rng, tmp)
    return cfg


def write(cfg: dict, rng, path) -> None:
    text = yaml.safe_dump(cfg, allow_unicode=True)
    roll = rng.random()
    if roll < 0.03:
        path.write_bytes(text.encode("utf-8") + b"\n# caf\xe9\n")  # one Latin-1 byte
    elif roll < 0.05:
        path.write_bytes(text.encode("utf-16"))
    elif roll < 0.07:  # billion laughs inside a condition
        bomb = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
                       for i in range(1, 9))
        path.write_text("l0: &l0 [lol]\n" + bomb + text + "\n", encoding="utf-8")
    elif roll < 0.08:
        path.write_text(text + "\n  bad: [unclosed\n", encoding="utf-8")
    else:
        path.write_text(text, encoding="utf-8")


HANG = 30.0  # seconds a mutation may take before the loading path counts as hung
LOADING = {"seconds": 0.0}  # time spent loading models, which the hang guard leaves out


@pytest.fixture()
def cached_models(monkeypatch):
    cache_models_offline(monkeypatch)


def cache_models_offline(monkeypatch) -> None:
    """Load each model once per test (the fuzz is about configs, not load time), and never
    download: Keras's downloader fails at once, as it does offline."""
    from keras.src.utils import file_utils

    cache, real = {}, models.load

    def load(spec, with_classifier=True):
        key = (spec.model_dump_json(), with_classifier)
        if key not in cache:
            start = time.perf_counter()
            try:
                cache[key] = real(spec, with_classifier)
            finally:
                LOADING["seconds"] += time.perf_counter() - start
        return cache[key]

    def offline(fname=None, origin=None, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- no network in tests")

    monkeypatch.setattr(models, "load", load)
    monkeypatch.setattr(file_utils, "get_file", offline)


def loading_path(path) -> runconfig.RunConfig:
    """What ``python -m vissearch run`` does before its first trial."""
    cfg = runconfig.load(str(path))
    runner.prepare(cfg)
    store.make_storage(store.storage_url(cfg.study))
    return cfg


def check_one(cfg_file, seed: int, budget: float = HANG) -> tuple[str, float]:
    """Load one config as ``run`` does; return its outcome and the seconds it took, less the
    time spent loading models."""
    start, loading = time.perf_counter(), LOADING["seconds"]
    try:
        cfg = loading_path(cfg_file)
        outcome = "accepted"
    except UserError as err:
        text = str(err)
        assert "\n" not in text and len(text) <= 400, (seed, text)
        outcome = "refused"
    except Exception as err:  # a traceback where a one-line error belongs
        raise AssertionError(f"mutation {seed}: {type(err).__name__}: {err}") from err
    spent = time.perf_counter() - start - (LOADING["seconds"] - loading)
    assert spent < budget, f"mutation {seed} took {spent:.1f} s: the loading path hangs"
    if outcome == "accepted":
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=max(seed, 0)))
        for _ in range(16):
            values = cfg.space.suggest(study.ask(), cfg.fixed)
            cfg.settings(values, seed=1)  # raises if the space drew something invalid
    return outcome, spent


def prepare(tmp, monkeypatch) -> list[dict]:
    """Work in ``tmp`` with the files the junk values name; return the base configs."""
    monkeypatch.chdir(tmp)  # a mutated relative results folder lands here, not in the checkout
    (tmp / "a-file").write_text("not a folder")
    (tmp / "not-a-db.db").write_text("not a database")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return bases(tmp)


def fuzz(n: int, tmp, monkeypatch) -> dict:
    """Run ``n`` seeded mutations and count the outcomes."""
    configs = prepare(tmp, monkeypatch)
    for base in configs:  # the unmutated configs load (TensorFlow warms up: no time limit)
        path = tmp / "base.yaml"
        path.write_text(json.dumps(base))
        assert check_one(path, -1, budget=120.0)[0] == "accepted"
    counts = {"accepted": 0, "refused": 0}
    for seed in range(n):
        rng = np.random.default_rng(seed)
        cfg = mutate(configs[seed % len(configs)], rng, tmp)
        path = tmp / f"m{seed % 7}.yaml"
        write(cfg, rng, path)
        counts[check_one(path, seed)[0]] += 1
    return counts


def test_300_mutations_are_accepted_or_refused_in_one_line(tmp_path, monkeypatch, cached_models):
    counts = fuzz(300, tmp_path, monkeypatch)
    assert counts["refused"] > 100 and counts["accepted"] > 30, counts


@pytest.mark.skipif(int(os.environ.get("VISSEARCH_FUZZ", "0")) < 1000,
                    reason="slow mode: VISSEARCH_FUZZ=5000")
def test_slow_mode_many_mutations(tmp_path, monkeypatch, cached_models):
    fuzz(int(os.environ["VISSEARCH_FUZZ"]), tmp_path, monkeypatch)
