"""How long run's loading path takes on hostile configs, against the configs they came from.

Runs the fuzz test's seeded mutations (tests/test_fuzz.py: the same ``mutate`` and ``write``,
models loaded once and never downloaded) and times each one, less model loading. The baseline,
in the same process and interleaved with the mutations, is the unmutated config the mutation
came from, loaded again after TensorFlow has warmed up. Prints the median, 99th percentile and
slowest mutation, each in seconds and as a multiple of its baseline's median.

    python bench/fuzz_load.py [--n 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_fuzz  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="mutations (the test runs 300)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-load-"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        test_fuzz.cache_models_offline(monkeypatch)
        configs = test_fuzz.prepare(tmp, monkeypatch)
        base_files = []
        for i, base in enumerate(configs):  # warm up: the first load traces and builds
            path = tmp / f"base{i}.yaml"
            path.write_text(json.dumps(base))
            test_fuzz.check_one(path, -1, budget=120.0)
            base_files.append(path)
        base_times = [[] for _ in configs]
        mutant_times = [[] for _ in configs]
        for seed in range(args.n):
            which = seed % len(configs)
            _, spent = test_fuzz.check_one(base_files[which], -1, budget=120.0)
            base_times[which].append(spent)
            rng = np.random.default_rng(seed)
            path = tmp / f"m{seed % 7}.yaml"
            test_fuzz.write(test_fuzz.mutate(configs[which], rng, tmp), rng, path)
            _, spent = test_fuzz.check_one(path, seed, budget=120.0)
            mutant_times[which].append((spent, seed))
    print(f"{args.n} mutations; seconds of run's loading path, model loading left out")
    print(f"{'base config':<12} {'base median':>11} {'median':>8} {'p99':>8} {'slowest':>16}")
    for name, base, mutants in zip(("quick", "vgg", "lucid"), base_times, mutant_times,
                                   strict=True):
        b = float(np.median(base))
        spent = np.array([s for s, _ in mutants])
        slow, seed = max(mutants)
        print(f"{name:<12} {b:>10.3f}s {np.median(spent):>7.3f}s {np.percentile(spent, 99):>7.3f}s"
              f" {slow:>7.3f}s (#{seed})   ×base: median {np.median(spent) / b:.2f},"
              f" p99 {np.percentile(spent, 99) / b:.2f}, slowest {slow / b:.2f}")
    allspent = np.array([s for m in mutant_times for s, _ in m])
    print(f"all: median {np.median(allspent):.3f}s, p99 {np.percentile(allspent, 99):.3f}s,"
          f" slowest {allspent.max():.3f}s; hang guard in the test {test_fuzz.HANG:.0f}s")


if __name__ == "__main__":
    main()
