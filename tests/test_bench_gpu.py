"""bench/gpu.py runs on a CPU too (--smoke): population 1 as float32, mixed and jit is timed
and written between its markers, so the GPU run has been exercised before a GPU is lent. The
table's writing is checked on made-up rows, with no model and no XLA."""

import re
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = r"^\| shapes 32 px \| (\d) \| (float32|mixed) \| (on|off) \| ([0-9.]+) \|"


def test_the_table_replaces_its_block_and_keeps_the_rest(tmp_path, bench_script):
    gpu = bench_script("gpu")
    rows = [{"workload": "VGG16 224 px", "population": k, "auto": k == 4, "precision": p,
             "jit": j, "step_s": s, "image_steps_s": 4 * k / s, "trials_h": 3.6 * k / s,
             "speedup": (k / s) / (1 / 0.5)}
            for k, p, j, s in [(1, "float32", False, 0.5), (4, "mixed", True, 0.25)]]
    out = tmp_path / "bench.md"
    out.write_text("# Bench\n\nkept text\n")
    args = Namespace(short=10, long=40)
    for _ in range(2):
        gpu.write(gpu.table(rows, args), out)
    text = out.read_text()
    assert text.startswith("# Bench\n\nkept text\n")
    assert text.count(gpu.BEGIN) == 1 and text.count(gpu.END) == 1  # replaced, not appended
    assert "| VGG16 224 px | 1 | float32 | off | 0.500 | 8.0 | 7.2 | ×1.00 |" in text
    assert "| VGG16 224 px | 4 (auto) | mixed | on | 0.250 | 64.0 | 57.6 | ×8.00 |" in text
    assert "4-class VGG16 trial alone (population 1, float32, no jit): 500 s." in text


def test_the_smoke_cases_are_few_and_the_full_run_covers_every_case(bench_script):
    gpu = bench_script("gpu")
    assert gpu.cases(True, None) == [("float32", False, 1), ("mixed", False, 1),
                                     ("float32", True, 1)]
    full = gpu.cases(False, 8)
    assert len(full) == 2 * 2 * 5 and ("mixed", True, 8) in full


def test_the_gpu_bench_runs_small_on_a_cpu_and_writes_its_table(tmp_path):
    out = tmp_path / "bench.md"
    subprocess.run([sys.executable, str(ROOT / "bench/gpu.py"), "--smoke", "--out", str(out)],
                   check=True, capture_output=True, text=True)
    rows = re.findall(ROW, out.read_text(), flags=re.M)
    assert [(k, p, j) for k, p, j, _ in rows] == [
        ("1", "float32", "off"), ("1", "mixed", "off"), ("1", "float32", "on")]
    assert all(float(s) > 0 for *_, s in rows)
    assert "×1.00 |" in out.read_text()  # population 1, float32, no jit is the baseline
