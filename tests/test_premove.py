"""A study written before vissearch/ was split into wings still opens, ranks and reproduces.

tests/data/premove holds a 2-trial zoo/shapes study made by commit 7227e69 (the flat layout).
Nothing in a study may name a module path; if something did, this is where it would break.
"""

import shutil
from pathlib import Path

import optuna

from vissearch.reproduce import reproduce
from vissearch.study import store
from vissearch.study.leaderboards import leaderboard

DATA = Path(__file__).parent / "data" / "premove"


def test_a_study_from_before_the_move_leaderboards_and_reproduces_identical_bytes(tmp_path):
    shutil.copytree(DATA / "results", tmp_path / "results")
    url = f"sqlite:///{tmp_path / 'results' / 'premove.db'}"
    study = optuna.load_study(study_name="premove", storage=url)
    # the study records where its images were; the copy lives elsewhere
    study.set_user_attr("artifact_dir", str(tmp_path / "results" / "premove" / "artifacts"))
    df = leaderboard("premove", storage=url)
    assert len(df) == 2 and df["state"].eq("COMPLETE").all()
    for number in (0, 1):
        _, _, same = reproduce(store.open_study("premove", url), str(number),
                               tmp_path / f"again{number}")
        assert same and all(same.values()), same
