"""The HTML report in a real headless Chromium, the dashboard over HTTP, the notebook view."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import optuna
import pytest

from vissearch import runconfig, runner
from vissearch.study import report, store
from vissearch.study.leaderboards import leaderboard, styled

ARTIFACTS = Path(os.environ.get("VISSEARCH_TEST_ARTIFACTS", "test-artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def small_study(tmp_path_factory, tiny_path):
    root = tmp_path_factory.mktemp("report")
    raw = {
        "study": {"name": "report-study", "seed": 3, "n_trials": 4, "results": str(root / "res")},
        "model": {"path": tiny_path, "preprocess": "none"},
        "target": {"kind": "class", "indices": [0, 1]},
        "render": {"size": 16, "steps": 6},
        "search": {"lr": {"log_uniform": [0.5, 20.0]}, "optimizer": {"choice": ["sgd", "adam"]}},
    }
    path = root / "config.yaml"
    path.write_text(json.dumps(raw))
    study = runner.run(runconfig.from_mapping(raw, str(path)), progress=False)
    return study, path, root


def test_report_has_every_section_and_image(small_study, tmp_path):
    study, path, _ = small_study
    index = report.build(study, tmp_path / "r", config_path=str(path))
    page = index.read_text()
    order = ["The best trial", "Render it again", "The next best, side by side", "What mattered",
             "Optimization history", "Parameter importances", "Slice plot", "Loss curves",
             "Every trial", "Config"]
    at = [page.find(text) for text in order]
    assert -1 not in at and at == sorted(at), dict(zip(order, at, strict=True))
    assert (tmp_path / "r" / "plotly.min.js").stat().st_size > 1_000_000
    assert "cdn" not in page.lower() and "https://" not in page
    for t in study.get_trials():
        assert (tmp_path / "r" / "images" / f"trial_{t.number}_grid.png").is_file()


def test_names_and_values_are_escaped_and_empty_studies_say_so(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    evil = "<script>alert(1)</script>"
    study = optuna.create_study(study_name=evil, storage=url)
    page = report.build(study, tmp_path / "empty").read_text()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "no trials yet" in page
    study.set_user_attr("config", {"study": {"objective": "activation"}})
    trial = study.ask()
    trial.suggest_categorical("init", ["<b>bold</b>"])
    trial.set_user_attr("error", "boom <img src=x onerror=alert(2)>")
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    page = report.build(study, tmp_path / "failed").read_text()
    assert "No trial of this study has completed" in page
    assert "<img src=x" not in page and "<b>bold" not in page and "&lt;b&gt;bold" in page


def test_notebook_view_embeds_thumbnails(small_study):
    study, _, _ = small_study
    html = styled(leaderboard(study)).to_html()
    assert html.count("data:image/png;base64,") == 4


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (CI installs it)")
def test_report_in_headless_chromium(small_study, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    study, path, _ = small_study
    index = report.build(study, tmp_path / "r", config_path=str(path))
    errors = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        best = page.locator("img#best")  # the best trial's grid, large, on the first screen
        box = best.bounding_box()
        assert best.evaluate("i => i.complete && i.naturalWidth > 0")
        assert box["y"] + box["height"] <= 1000 and box["width"] >= 400, box
        best_number = str(int(leaderboard(study).iloc[0]["number"]))
        assert page.locator("h2", has_text=f"The best trial: {best_number}").count() == 1
        page.screenshot(path=str(tmp_path / "first-screen.png"))
        loaded = page.eval_on_selector_all(
            "img.thumb", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
        assert loaded == [True] * len(study.get_trials())
        assert page.locator(".plot-container").count() >= 4  # plotly drew its figures

        def order():
            return page.eval_on_selector_all(
                "#board tr.trial", "rows => rows.map(r => r.dataset.trial)")

        def column(name):
            return page.locator("#board th", has_text=name).first

        before = order()
        column("activation").click()  # ascending
        ascending = order()
        column("activation").click()  # descending
        assert ascending == list(reversed(order())) and ascending != before
        acts = {str(int(r["number"])): r["activation"] for _, r in leaderboard(study).iterrows()}
        assert [acts[n] for n in ascending] == sorted(acts.values())
        page.locator("#board tr.trial").first.click()
        assert page.locator("#board tr.detail:not([hidden]) img").count() == 2
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        shutil.copyfile(tmp_path / "first-screen.png", ARTIFACTS / "report_first_screen.png")
        browser.close()
    assert errors == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_a_trial_image(small_study):
    study, path, root = small_study
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vissearch", "dashboard", str(path),
                             "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert f"http://127.0.0.1:{port}/" in proc.stdout.readline()
        trial = study.best_trial
        aid = trial.user_attrs["images"]["grid"]
        storage = store.make_storage(store.storage_url(study.study_name, None, root / "res"))
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        url = f"http://127.0.0.1:{port}/artifacts/{study_id}/{trial_id}/{aid}"
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None:
            try:
                body = urllib.request.urlopen(url, timeout=5).read()
            except OSError:
                time.sleep(0.5)
        assert body == store.artifact_path(study, aid).read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_report_copies_no_file_outside_the_study_a_record_names(small_study, tmp_path):
    """A study record is data: a forged image path with ../ or an absolute path, or an artifact
    id that climbs out, copies nothing into the report."""
    study, path, root = small_study
    secret = tmp_path / "secret.txt"
    secret.write_text("the password is hunter2")
    base = Path(study.user_attrs["artifact_dir"])
    climb = os.path.relpath(secret, base.parent)
    forged = optuna.trial.create_trial(
        params={"lr": 1.0, "optimizer": "sgd"}, distributions=study.trials[0].distributions,
        values=[1e9], user_attrs={"images": {
            "grid": os.path.relpath(secret, base), "targets": {"0": str(secret)},
            "files": {"grid": climb, "0": str(secret)}}})
    study.add_trial(forged)
    number = study.trials[-1].number
    images = study.trials[-1].user_attrs["images"]
    assert store.trial_file(study, images, "grid") is None
    assert store.trial_file(study, images, "0") is None
    report.build(study, tmp_path / "r", config_path=str(path))
    copied = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert not [p for p in copied if b"hunter2" in p.read_bytes()]
    assert not (tmp_path / "r" / "images" / f"trial_{number}_grid.png").exists()


@pytest.mark.parametrize("direction, first", [("maximize", "a"), ("minimize", "b")])
def test_importances_answer_the_study_direction(direction, first):
    """A known answer: the highest values need a > 0.9, the lowest need b > 0.9. A maximized
    study must rank a first, a minimized one b (PED-ANOVA alone would rank b first for both)."""
    from vissearch.study.leaderboards import importances

    rng = np.random.default_rng(7)
    study = optuna.create_study(direction=direction)
    dist = {k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in "abc"}
    for _ in range(300):
        p = {k: float(rng.uniform()) for k in "abc"}
        value = 10.0 * (p["a"] > 0.9) - 10.0 * (p["b"] > 0.9) + 0.01 * rng.normal()
        study.add_trial(optuna.trial.create_trial(params=p, distributions=dist, value=value))
    ranked = importances(study)
    assert max(ranked, key=ranked.get) == first, ranked
