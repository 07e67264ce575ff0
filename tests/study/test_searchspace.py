"""Search spaces: validation, seeded sampling, conditions."""

import optuna
import pytest

from vissearch.errors import UserError
from vissearch.study import searchspace

SPACE = {
    "lr": {"log_uniform": [0.1, 100.0]},
    "blur_sigma": {"uniform": [0.3, 1.0], "or_zero": True},
    "blur_every": {"int": [4, 8], "when": {"blur_sigma": "> 0"}},
    "optimizer": {"choice": ["sgd", "nesterov", "adam"]},
    "momentum": {"uniform": [0.5, 0.99], "when": {"optimizer": "nesterov"}},
    "median_size": {"choice": [0, 3, 5]},
    "median_every": {"int": [4, 12], "step": 2, "when": {"median_size": [3, 5]}},
}


def sample(space, seed, n=30):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial, {}))
        study.tell(trial, 0.0)
    return out


def test_same_seed_same_params_other_seed_other_params():
    space = searchspace.load(SPACE)
    assert sample(space, 1) == sample(space, 1)
    assert sample(space, 1) != sample(space, 2)


def test_conditional_params_appear_only_when_their_condition_holds():
    for values in sample(searchspace.load(SPACE), 5, n=60):
        assert ("blur_every" in values) == (values["blur_sigma"] > 0)
        assert ("momentum" in values) == (values["optimizer"] == "nesterov")
        assert ("median_every" in values) == (values["median_size"] in (3, 5))
        if "median_every" in values:
            assert values["median_every"] in (4, 6, 8, 10, 12)


def test_conditions_are_sampled_after_what_they_depend_on():
    reversed_space = dict(reversed(list(SPACE.items())))
    names = searchspace.load(reversed_space).names
    assert names.index("blur_sigma") < names.index("blur_every")
    assert names.index("optimizer") < names.index("momentum")


@pytest.mark.parametrize("spec, expected", [
    ({"lr": {"uniform": [2.0, 1.0]}}, "empty or inverted range"),
    ({"lr": {"uniform": [1.0, 1.0]}}, "empty or inverted range"),
    ({"lr": {"log_uniform": [0.0, 1.0]}}, "touches 0"),
    ({"median_size": {"choice": [3, 4]}}, "value 4 is not valid"),
    ({"optimizer": {"choice": ["sgd", "lbfgs"]}}, "value 'lbfgs' is not valid"),
    ({"lrr": {"uniform": [0.1, 1.0]}}, "unknown setting (did you mean: lr"),
    ({"lr": {"uniforn": [0.1, 1.0]}}, "unknown key 'uniforn'"),
    ({"blur_every": {"int": [2, 8], "when": {"blur": "> 0"}}}, "is not a setting"),
    ({"seed": {"int": [0, 9]}}, "seed"),
])
def test_bad_spaces_are_one_line_errors(spec, expected):
    with pytest.raises(UserError) as info:
        searchspace.load(spec)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_fixed_and_searched_is_an_error():
    with pytest.raises(UserError, match="render.lr is both fixed"):
        searchspace.load(SPACE, fixed={"lr": 1.0})


def test_missing_space_file_and_include_with_overrides(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        searchspace.load("nowhere.yaml")
    f = tmp_path / "space.yaml"
    f.write_text("lr: {log_uniform: [0.1, 10.0]}\ninit: {choice: [uniform, gaussian]}\n")
    space = searchspace.load({"include": "space.yaml", "init": None,
                              "tv": {"uniform": [0.0, 1.0]}}, base=tmp_path)
    assert sorted(space.names) == ["lr", "tv"]


def test_shipped_spaces_load():
    """Every shipped space, by the name a config gives (each value is checked against the
    setting it names as it loads)."""
    names = sorted(p.stem for p in searchspace.SHIPPED.glob("*.yaml"))
    assert {"lucid", "maco", "readable", "tence2016"} <= set(names)
    for name in names:
        assert searchspace.load(name).names


def test_grid_needs_finite_choices():
    assert searchspace.load({"median_size": {"choice": [0, 3]}}).grid() == {"median_size": [0, 3]}
    with pytest.raises(UserError, match="grid sampler"):
        searchspace.load({"lr": {"uniform": [0.1, 1.0]}}).grid()


@pytest.mark.parametrize("spec", [{"jitter": {"int": [0, 10**400]}},
                                  {"lr": {"log_uniform": [1, 10**400]}},
                                  {"lr": {"uniform": [-(10**400), 1.0]}}])
def test_a_bound_past_a_float_range_is_the_one_line_refusal(spec):
    with pytest.raises(UserError, match="bounds must be"):
        searchspace.load(spec)


def test_an_installed_package_carries_the_shipped_spaces(tmp_path):
    """searchspace/ sits at the top of the checkout; the wheel maps it to vissearch/spaces/,
    where an installed vissearch looks for ``search: NAME``."""
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path), str(root)], check=True,
                   capture_output=True)
    (wheel,) = tmp_path.glob("vissearch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"vissearch/spaces/{p.name}" for p in (root / "searchspace").glob("*.yaml")}
    assert shipped and shipped <= names
    assert searchspace.SHIPPED == root / "searchspace"  # a checkout reads its own folder
