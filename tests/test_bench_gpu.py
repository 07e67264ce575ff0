"""bench/gpu.py runs on a CPU too (--smoke): every population, precision and jit row is timed
and written between its markers, so the GPU run has been exercised before a GPU is lent."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_gpu_bench_runs_small_on_a_cpu_and_writes_its_table(tmp_path):
    out = tmp_path / "bench.md"
    out.write_text("# Bench\n\nkept text\n")
    subprocess.run([sys.executable, str(ROOT / "bench/gpu.py"), "--smoke", "--out", str(out)],
                   check=True, capture_output=True, text=True, timeout=600)
    text = out.read_text()
    assert text.startswith("# Bench\n\nkept text\n")
    rows = re.findall(r"^\| Lite0 64 px \| (\d) \| (float32|mixed) \| (on|off) \| ([0-9.]+) \|",
                      text, flags=re.M)
    assert {(k, p, j) for k, p, j, _ in rows} == {
        (k, p, j) for k in "12" for p in ("float32", "mixed") for j in ("on", "off")}
    assert all(float(s) > 0 for *_, s in rows)
    assert "×1.00 |" in text  # population 1, float32, no jit is the baseline
    subprocess.run([sys.executable, str(ROOT / "bench/gpu.py"), "--smoke", "--out", str(out)],
                   check=True, capture_output=True, timeout=600)
    assert out.read_text().count("<!-- gpu.py: begin -->") == 1  # replaced, not appended
