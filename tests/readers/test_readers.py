"""Blind readers end to end: a sheet from a study and a folder, answered, scored back into the
study; nothing in the sheet tells an image's class; bad input is one line and writes nothing."""

import csv
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from vissearch import cli
from vissearch.models import labels
from vissearch.readers.make import make
from vissearch.readers.score import score
from vissearch.scoring import naming
from vissearch.study.leaderboards import leaderboard

DATA = Path(__file__).parents[1] / "data" / "premove"  # a zoo/shapes study, 2 trials x 2 classes
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture()
def study(tmp_path, monkeypatch):
    """A copy of the premove study (classes 0 circle and 3 star) and a peer folder of PNGs."""
    shutil.copytree(DATA, tmp_path / "s")
    monkeypatch.chdir(tmp_path / "s")
    db = sqlite3.connect("results/premove.db")
    db.execute("UPDATE study_user_attributes SET value_json = ? WHERE key = 'artifact_dir'",
               (json.dumps(str(tmp_path / "s" / "results" / "premove" / "artifacts")),))
    db.commit()
    db.close()
    peer = tmp_path / "s" / "peer"
    peer.mkdir()
    shutil.copy("results/premove/trials/0000/target_3_star.png", peer / "target_0003.png")
    shutil.copy("results/premove/trials/0001/target_0_circle.png", peer / "circle.png")
    return tmp_path / "s"


def test_synonyms_name_the_class_and_a_wider_word_does_not():
    names = naming.for_label_set("imagenet")
    table = labels.imagenet()
    assert names.names_class("billiard table", table.index("pool table"))
    assert names.names_class("a Pool-Table", table.index("pool table"))
    assert names.names_class("eagle", table.index("bald eagle"))
    assert not names.names_class("bird", table.index("bald eagle"))
    assert not names.names_class("bear", table.index("brown bear"))  # five classes are bears
    assert names.names_class("flamingos", table.index("flamingo"))


def test_a_sheet_says_nothing_of_its_images_classes(study):
    key_path = make(["premove.yaml", "peer"], "out", seed=1)
    key = json.loads(key_path.read_text())
    sheet = key_path.parent / "sheet"
    assert sorted(p.name for p in sheet.iterdir()) == (
        [f"img_{i:02d}.png" for i in range(1, 7)] + ["index.html"])
    for png in sheet.glob("*.png"):
        with Image.open(png) as im:
            assert not im.info and not getattr(im, "text", {})  # no metadata chunk at all
    html = (sheet / "index.html").read_text()
    data = json.loads(re.search(r'id="sheet-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1))
    assert data["names"] == sorted(labels.named("shapes"), key=str.lower)
    assert all(set(item) == {"image", "file"} for item in data["images"])
    rest = html.replace(json.dumps(data["names"])[1:-1], "")
    for name in labels.named("shapes"):
        assert not re.search(rf"\b{name}\b", rest, re.I), name
    assert {i["class_name"] for i in key["images"]} == {"circle", "star"}
    assert not list(sheet.glob("key*"))  # the key is kept apart


def test_rotated_sheets_show_each_class_once_and_every_image_on_one_sheet(study, capsys):
    assert cli.main(["readers", "make", "premove.yaml", "peer", "--out", "rot", "--seed", "7",
                     "--rotate"]) == 0
    keys = sorted(Path("rot").glob("rotation-*/key.json"))
    assert len(keys) == 3 and capsys.readouterr().out.count("key: ") == 3  # 2 trials + peer
    seen = []
    for key_path in keys:
        items = json.loads(key_path.read_text())["images"]
        assert sorted(i["class_name"] for i in items) == ["circle", "star"]  # each class once
        assert len(list((key_path.parent / "sheet").glob("img_*.png"))) == 2
        seen += [(i["origin"], i["trial"]) for i in items]
    everything = json.loads(make(["premove.yaml", "peer"], "all", seed=7).read_text())["images"]
    assert sorted(map(str, seen)) == sorted(str((i["origin"], i["trial"])) for i in everything)
    # a sheet's two classes come from two different versions (a trial, the peer folder)
    for k in keys:
        versions = {(i["method"], i["trial"]) for i in json.loads(k.read_text())["images"]}
        assert len(versions) == 2
    # each rotation scored with its own reader, who names only circles; pooled by method
    for key_path in keys:
        images = json.loads(key_path.read_text())["images"]
        (key_path.parent / "r.txt").write_text(
            "".join(f"{i['image']} | circle | 2\n" for i in images))
        score(key_path, [str(key_path.parent / "r.txt")], write_back=False)
    assert cli.main(["readers", "pool", *map(str, sorted(Path("rot").glob("rotation-*"))),
                     "--out", "pooled"]) == 0
    pooled = {r["method"]: r for r in csv.DictReader(open("pooled/by_method.csv"))}
    circles = {}
    for i in everything:
        circles.setdefault(i["method"], []).append(i["class_name"] == "circle")
    assert set(pooled) == set(circles)
    for method, hits in circles.items():
        assert int(pooled[method]["judgments"]) == len(hits)
        assert float(pooled[method]["named"]) == pytest.approx(sum(hits) / len(hits))
    assert cli.main(["readers", "pool", "rot", "--out", "x"]) == 2  # no figures there
    assert "no by_image.csv" in capsys.readouterr().err


def test_forced_choice_offers_k_names_with_the_true_one(study):
    key = json.loads(make(["premove.yaml"], "out", seed=2, choices=4).read_text())
    for item in key["images"]:
        assert len(set(item["choices"])) == 4 and item["class_name"] in item["choices"]


def test_scripted_answers_score_into_the_study_and_its_leaderboard(study):
    key_path = make(["premove.yaml", "mine=peer"], "out", seed=3)
    key = json.loads(key_path.read_text())
    truth = {i["image"]: i["class_name"] for i in key["images"]}
    wrong = {"circle": "star", "star": "circle"}
    lines = [f"{img} | {truth[img] if n % 2 == 0 else wrong[truth[img]]} ; dots | 2"
             for n, img in enumerate(sorted(truth))]
    (study / "a.txt").write_text("\n".join(lines) + "\n")
    (study / "b.txt").write_text("".join(f"{img} | {truth[img]}s | 1\n" for img in truth))
    tables = score(key_path, ["a.txt", "b.txt"])
    assert sum(r["judgments"] for r in tables["method"]) == 12
    per_trial = {r["trial"]: r for r in tables["trial"]}
    df = leaderboard("premove", storage="sqlite:///results/premove.db")
    for _, row in df.iterrows():
        assert row["readers_n"] == per_trial[row["number"]]["judgments"] == 4
        assert row["readers_named"] == pytest.approx(per_trial[row["number"]]["named"])
    assert 0 < df["readers_named"].mean() < 1
    score(key_path, ["a.txt", "b.txt"])  # scoring the sheet again replaces its own counts
    again = leaderboard("premove", storage="sqlite:///results/premove.db")
    assert list(again["readers_n"]) == list(df["readers_n"])
    assert (key_path.parent / "figures" / "figures.md").is_file()


def fails_in_one_line(capsys, argv, needle):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and needle in err, err
    return err


def test_bad_input_is_one_line_and_writes_nothing(study, capsys):
    fails_in_one_line(capsys, ["readers", "make", "nothing/", "--out", "o1"], "no such")
    (study / "empty").mkdir()
    fails_in_one_line(capsys, ["readers", "make", "empty", "--out", "o2"], "no PNG")
    Image.new("RGB", (8, 8)).save(study / "empty" / "holiday.png")
    fails_in_one_line(capsys, ["readers", "make", "empty", "--out", "o3"], "holiday.png")
    assert not any(Path(f"o{i}").exists() for i in (1, 2, 3))
    key = make(["premove.yaml"], "out", seed=4)
    fails_in_one_line(capsys, ["readers", "score", "missing.json", "a.txt"], "no such key")
    (study / "other.json").write_text(json.dumps({"format": "vissearch-readers-answers/1",
                                                  "sheet": "0123", "answers": {}}))
    fails_in_one_line(capsys, ["readers", "score", str(key), "other.json"], "another sheet")
    (study / "csv.txt").write_text("image,guess\nimg_01,circle\n")
    fails_in_one_line(capsys, ["readers", "score", str(key), "csv.txt"], "line 1")
    (study / "many.txt").write_text("img_99 | star | 2\n")
    fails_in_one_line(capsys, ["readers", "score", str(key), "many.txt"], "another sheet")
    assert not (key.parent / "figures").exists()
    df = leaderboard("premove", storage="sqlite:///results/premove.db")
    assert "readers_n" not in df.columns


def test_a_study_without_images_is_refused(study, capsys):
    shutil.rmtree("results/premove/trials")
    shutil.rmtree("results/premove/artifacts")
    fails_in_one_line(capsys, ["readers", "make", "premove.yaml", "--out", "o"], "no images")
    assert not Path("o").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (CI installs it)")
def test_the_sheet_filled_in_chromium_saves_answers_that_score(study):
    sync_api = pytest.importorskip("playwright.sync_api")
    key_path = make(["premove.yaml"], "out", seed=5)
    truth = {i["image"]: i["class_name"] for i in json.loads(key_path.read_text())["images"]}
    first, second, third = sorted(truth)[:3]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_context(accept_downloads=True).new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((key_path.parent / "sheet" / "index.html").resolve().as_uri())
        page.fill("#reader", "r1")
        page.locator(f"#{first} input.guess").first.fill(truth[first])
        page.locator(f"#{first} input[value='2']").check()
        page.locator(f"#{second} input.guess").first.fill("dots")
        page.locator(f"#{third} button.cannot").click()
        page.reload()  # the answers stay in the browser
        assert page.locator(f"#{first} input.guess").first.input_value() == truth[first]
        assert page.locator(f"#{third} input[value='0']").is_checked()
        with page.expect_download() as info:
            page.click("#save")
        saved = Path(info.value.path())
        shutil.copy(saved, study / "answers-r1.json")
        browser.close()
    assert not errors, errors
    tables = score(key_path, ["answers-r1.json"])
    (row,) = tables["method"]
    assert row["judgments"] == 3 and row["named"] == pytest.approx(1 / 3)
    df = leaderboard("premove", storage="sqlite:///results/premove.db")
    assert df["readers_n"].sum() == 3


def test_a_rating_posted_to_the_dashboard_reaches_the_leaderboard(study):
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "vissearch", "dashboard", "premove.yaml",
                             "--rate", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                studies = json.load(urllib.request.urlopen(f"{base}/api/studies", timeout=2))
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the dashboard did not start")
        (summary,) = studies["study_summaries"]
        detail = json.load(urllib.request.urlopen(
            f"{base}/api/studies/{summary['study_id']}?after=0", timeout=10))
        widgets = detail["form_widgets"]["widgets"]
        assert widgets[0]["user_attr_key"] == "readers_rating"
        trial = next(t for t in detail["trials"] if t["number"] == 1)
        request = urllib.request.Request(
            f"{base}/api/trials/{trial['trial_id']}/user-attrs", method="POST",
            data=json.dumps({"user_attrs": {"readers_rating": 0.5}}).encode(),
            headers={"Content-Type": "application/json"})
        assert urllib.request.urlopen(request, timeout=10).status == 204
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    df = leaderboard("premove", storage="sqlite:///results/premove.db").set_index("number")
    assert df.loc[1, "readers_rating"] == 0.5 and df["readers_rating"].isna().sum() == 1


def test_what_readers_named_comes_first_in_tune_recipes_and_the_report(study, tmp_path):
    import optuna

    from vissearch import recipes
    from vissearch.study import report, store

    key_path = make(["premove.yaml"], "out", seed=6)
    images = json.loads(key_path.read_text())["images"]
    # readers name trial 0's images (the judge's second) and none of trial 1's (its best)
    (study / "r.txt").write_text("".join(
        f"{i['image']} | {i['class_name'] if i['trial'] == 0 else 'dots'} | 2\n"
        for i in images))
    score(key_path, ["r.txt"])
    loaded = optuna.load_study(study_name="premove", storage="sqlite:///results/premove.db")
    assert store.ranked(loaded)[0].number == 1
    first = store.preferred(loaded)[0]
    assert first.number == 0
    entry = recipes.entry_from_trial(first, "class", None, "premove", ["activation"])
    assert entry["source"]["readers"] == {"named": 1.0, "named3": 1.0, "confident": 1.0, "n": 2}
    index = report.build(loaded, tmp_path / "report")
    page = index.read_text()
    best = page[page.index("The best trial"):page.index("searched settings")]
    assert "readers_named" in best
