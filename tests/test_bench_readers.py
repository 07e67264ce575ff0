"""The readers' bench scripts: timing figures kept under two writers; the goal's chances."""

import json
import threading

import numpy as np
import pandas as pd


def test_figures_added_at_once_by_many_writers_are_all_kept(tmp_path, bench_script):
    add_seconds = bench_script("readers_unseen").add_seconds
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


def test_the_goal_chance_follows_the_classes_drawn(bench_script):
    chances = bench_script("readers_goal").chances
    # 100 classes: the entry named on 80 (all readers), the rival on 70, not the same ones
    entry = np.r_[np.ones(80), np.zeros(20)]
    rival = np.r_[np.zeros(10), np.ones(70), np.zeros(20)]
    table = pd.DataFrame({"entry": entry, "rival": rival, "far": np.zeros(100)})
    got = chances(table, "entry", ["rival", "far"], classes=20, shifts=[0.0, 0.3, -0.5],
                  resamples=4000)
    plain, up, down = got.to_dict("records")
    assert abs(plain["entry's mean"] - 0.8) < 0.01
    assert 0.4 < plain[">= 0.8"] < 0.7  # a draw of 20 lands either side of its mean
    assert plain["> far"] > 0.99 and 0.6 < plain["> rival"] < 0.95
    assert plain["goal met"] <= min(plain[">= 0.8"], plain["> rival"])
    assert up["goal met"] > 0.99 and down["goal met"] == 0.0
    again = chances(table, "entry", ["rival", "far"], classes=20, shifts=[0.0], resamples=4000)
    assert again.equals(got.iloc[:1])  # seeded
