"""bench/readers_unseen.py: two processes rendering one draw keep every timing figure."""

import importlib.util
import json
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("readers_unseen",
                                                  ROOT / "bench/readers_unseen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_added_at_once_by_many_writers_are_all_kept(tmp_path):
    add_seconds = _bench().add_seconds
    path = tmp_path / "unseen" / "seconds.json"

    def writer(k):
        for _ in range(25):  # each add opens the lock anew, as a second process would
            add_seconds(path, {f"m{k}": float(k), "shared (wall)": 1.0}, 2)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = json.loads(path.read_text())
    assert seconds["shared (wall)"] == [1.0] * 300
    assert all(seconds[f"m{k}"] == [float(k)] * 50 for k in range(6))
