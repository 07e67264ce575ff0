"""What a new user meets: a typo fixed and run again, a quiet start, results a person can browse,
labelled grids, help with no arguments, and a run that ends by saying what to do next."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from vissearch import __version__, commands, runconfig, runner
from vissearch.imageio import caption_height
from vissearch.study import store
from vissearch.study.leaderboards import leaderboard

CLI = [sys.executable, "-m", "vissearch"]
NATIVE_NOISE = ("cuda", "absl", "I0000", "E0000", "cuInit", "oneDNN")


def shapes_config(tmp_path, name="newuser", **study) -> dict:
    return {
        "study": {"name": name, "seed": 3, "n_trials": 2, "results": str(tmp_path / "res"),
                  **study},
        "model": {"name": "zoo/shapes"},
        "target": {"kind": "class", "indices": ["circle", "dots", "ring"]},
        "render": {"size": 32, "steps": 10},
        "search": {"lr": {"log_uniform": [0.5, 5.0]}},
    }


def write(tmp_path, raw, name="c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(raw))
    return path


def cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, **kw)


def test_a_typo_leaves_no_study_behind_and_the_fixed_config_runs(tmp_path):
    raw = shapes_config(tmp_path)
    raw["target"] = {"kind": "filter", "layer": "conv9", "indices": [0, 1]}
    path = write(tmp_path, raw)
    out = cli("run", path, "--no-progress")
    assert out.returncode == 2 and "conv9" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    db = tmp_path / "res" / "newuser.db"
    if db.exists():
        assert not optuna.get_all_study_names(f"sqlite:///{db}")
    raw["target"]["layer"] = "conv3"
    fixed = cli("run", write(tmp_path, raw), "--no-progress")
    assert fixed.returncode == 0, fixed.stderr


def test_a_study_with_no_finished_trial_adopts_the_changed_config(tmp_path):
    raw = shapes_config(tmp_path)
    runner.open_or_create(runconfig.from_mapping(raw))  # created, then nothing ran
    raw["render"]["steps"] = 12
    study = runner.run(runconfig.from_mapping(raw), progress=False)
    assert study.user_attrs["config"]["render"]["steps"] == 12
    raw["render"]["steps"] = 14  # now trials finished: a change is refused
    with pytest.raises(Exception, match="another config"):
        runner.run(runconfig.from_mapping(raw), progress=False)


def test_commands_start_without_tensorflow_chatter():
    out = cli("layers", "zoo/shapes")
    assert out.returncode == 0 and "conv3" in out.stdout
    assert not [w for w in NATIVE_NOISE if w in out.stderr], out.stderr


def test_results_are_browsable_per_trial_with_png_names(tmp_path):
    raw = shapes_config(tmp_path)
    study = runner.run(runconfig.from_mapping(raw), progress=False)
    folder = tmp_path / "res" / "newuser" / "trials"
    assert sorted(p.name for p in (folder / "0000").iterdir()) == [
        "grid.png", "target_0_circle.png", "target_10_dots.png", "target_5_ring.png"]
    df = leaderboard(study)
    assert df["grid_png"].str.endswith(".png").all()
    assert df["grid_png"].map(lambda p: Path(p).parent.parent == folder).all()
    trial = study.get_trials()[0]
    aid = trial.user_attrs["images"]["grid"]
    # the same bytes are Optuna's artifact, which the dashboard serves
    assert store.artifact_path(study, aid).read_bytes() == (folder / "0000/grid.png").read_bytes()


def test_grids_are_labelled_under_each_cell_with_the_reference_margin(tmp_path):
    raw = shapes_config(tmp_path)
    study = runner.run(runconfig.from_mapping(raw), progress=False)
    grid = np.asarray(Image.open(leaderboard(study)["grid_png"][0]))
    side, strip, margin = 32, caption_height(32), 5
    assert grid.shape == (2 * (side + strip) + margin, 2 * side + margin, 3)  # 3 cells, 2 x 2
    caption = grid[side:side + strip, :side]
    assert caption.max() > 200  # white text on the black strip
    assert (grid[side + strip:side + strip + margin] == 0).all()  # the margin stays black


def test_no_arguments_list_every_command_with_an_example_and_version_prints():
    out = cli()
    assert out.returncode == 0
    for c in commands.COMMANDS.values():
        assert c.name in out.stdout and c.example in out.stdout
    assert cli("--version").stdout.strip() == f"vissearch {__version__}"


def test_a_run_ends_with_the_best_images_and_the_next_commands(tmp_path):
    path = write(tmp_path, shapes_config(tmp_path))
    out = cli("run", path, "--no-progress")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    best = next(line for line in lines if line.startswith("best trial"))
    assert Path(best.rsplit(": ", 1)[1]).is_file()
    for command in ("leaderboard", "report", "reproduce"):
        assert any(f"python -m vissearch {command} {path}" in line for line in lines), command
    url = f"sqlite:///{tmp_path}/other.db"
    again = cli("run", path, "--no-progress", "--storage", url)
    assert again.returncode == 0, again.stderr
    nexts = [line for line in again.stdout.splitlines() if "python -m vissearch" in line]
    assert nexts and all(f"--storage {url}" in line for line in nexts)


def test_the_readme_own_model_section_word_for_word(tmp_path):
    """The README's "Your own model" commands, run as written in an empty folder: a saved
    model and its config in my_project/, the run from the folder above."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    section = readme[readme.index("## Your own model"):]
    script = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "conv2" in done.stdout and "logits" in done.stdout  # the layers listing
    assert "study my-model: 8 trials" in done.stdout
    assert re.search(r"wrote \d+ images to out/my_best; (\d+) of \1 identical", done.stdout)
    assert (tmp_path / "results" / "my-model.db").is_file()
    assert (tmp_path / "out" / "my_best" / "grid.png").is_file()


def test_the_readme_says_what_each_test_needs_from_outside_python_and_how_long():
    """Every test file that reads a server's address (VISSEARCH_TEST_*) or looks for a
    program on the PATH is named in the README's table of what tests need, beside the Debian
    packages to install; the README says how long the suite takes and how to see the slowest."""
    import re

    root = Path(__file__).parents[1]
    readme = (root / "README.md").read_text()
    need = readme[readme.index("**What some tests need.**"):readme.index("## Layout")]
    outside = [p for p in sorted((root / "tests").rglob("test_*.py"))
               if re.search(r"VISSEARCH_TEST_(PG|S3)|shutil\.which\(", p.read_text())]
    assert len(outside) >= 3
    for path in outside:
        assert str(path.relative_to(root)) in need, path
    assert "apt-get install -y postgresql chromium" in need
    assert "--durations=15" in readme and "**How long.**" in readme
