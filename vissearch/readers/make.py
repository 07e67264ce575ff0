"""``readers make``: a blind sheet from studies, render folders and plain folders of PNGs.

``(sources, out) => out/sheet/ (index.html, img_NN.png) + out/key.json``. The sheet is what a
reader sees: the images shuffled with a recorded seed, renamed ``img_01.png`` ..., re-encoded
from their pixels (no PNG text, no caption), and one static page that lists the model's class
names in alphabetical order for completion. The key, which ties each image to its source,
method, trial and class, is written beside the sheet folder, never inside it.

A source is ``[METHOD=]PATH``: a run config (its study's best ``--best`` class trials, or the
trials named after a colon, ``configs/a.yaml:3,7``), or a folder of PNGs whose names give their
class (``target_0130.png`` as ``render`` and ``apply`` write them, ``130.png``, or
``flamingo.png``). METHOD names the source in the figures (default: the study's name or the
folder's).
"""

from __future__ import annotations

import json
import random
import re
import secrets
import shutil
import tempfile
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from vissearch.errors import UserError, shorten
from vissearch.imageio import write_png
from vissearch.models import labels

KEY_FORMAT = "vissearch-readers-key/1"
MAX_IMAGES = 2000


@dataclass
class Item:
    """One image of a sheet and what the key says of it."""

    origin: str  # the file it was copied from
    method: str
    source: str
    cls: int
    class_name: str = ""
    study: str | None = None
    config: str | None = None
    trial: int | None = None
    image: str = ""
    choices: list[str] | None = None


def _split(source: str) -> tuple[str | None, str, list[int] | None]:
    """``[METHOD=]PATH[:N,M]`` -> (method, path, trial numbers)."""
    method, _, rest = source.partition("=") if "=" in source else (None, "", source)
    trials = None
    match = re.fullmatch(r"(.+\.ya?ml):([0-9, ]+)", rest)
    if match:
        rest = match.group(1)
        trials = [int(t) for t in match.group(2).replace(" ", "").split(",") if t]
    return (method or None), rest, trials


def from_study(path: str, method: str | None, trials: list[int] | None, best: int,
               storage: str | None) -> tuple[list[Item], str]:
    """The per-class PNGs of a study's best trials (or the named ones) and its label set."""
    from vissearch import runconfig
    from vissearch.study import store

    cfg = runconfig.load(path, storage=storage)
    if cfg.target.kind != "class":
        raise UserError(f"{path}: readers name classes; this study renders {cfg.target.kind} "
                        "targets")
    label_set = labels.label_set(cfg.model.name, cfg.model.judge)
    if label_set is None:
        raise UserError(f"{path}: the model's classes have no names (readers' answers need "
                        "names to be matched against)")
    study = store.open_study(cfg.study.name, cfg.study.storage, cfg.study.results)
    chosen = ([store.find_trial(study, str(n)) for n in trials] if trials else
              store.ranked(study)[:best])
    names = labels.named(label_set)
    items = []
    for trial in chosen:
        images = trial.user_attrs.get("images", {})
        for key in images.get("targets", {}):
            file = store.trial_file(study, images, key)
            if file is not None:
                items.append(Item(str(file), method or cfg.study.name, str(Path(path).resolve()),
                                  int(key), names[int(key)], cfg.study.name,
                                  str(Path(path).resolve()), trial.number))
    if not items:
        raise UserError(f"{path}: study {cfg.study.name!r} has no images of completed trials "
                        "on this machine")
    return items, label_set


def _class_of(stem: str, label_set: str) -> int | None:
    number = re.search(r"\d+", stem)
    names = labels.named(label_set)
    if number and int(number.group()) < len(names):
        return int(number.group())
    hits = labels._lookup(label_set).get(re.sub(r"[-_]+", " ", stem).strip().lower())
    return hits[0] if hits and len(hits) == 1 else None


def from_folder(path: str, method: str | None, label_set: str) -> list[Item]:
    """The PNGs of a folder, each named by its class."""
    folder = Path(path)
    pngs = sorted(p for p in folder.glob("*.png") if p.is_file())
    if not pngs:
        raise UserError(f"{path}: no PNG file in this folder (expected one PNG per class, "
                        "named target_0130.png, 130.png or flamingo.png)")
    names = labels.named(label_set)
    items = []
    for png in pngs:
        cls = _class_of(png.stem, label_set)
        if cls is None:
            raise UserError(f"{png}: its name gives no {label_set} class (name it "
                            "target_0130.png, 130.png or flamingo.png)")
        items.append(Item(str(png.resolve()), method or folder.resolve().name,
                          str(folder.resolve()), cls, names[cls]))
    return items


def collect(sources: list[str], best: int, storage: str | None,
            label_set: str | None) -> tuple[list[Item], str]:
    """Every image of every source, studies first so that they decide the label set."""
    if not sources:
        raise UserError("readers make: name at least one source (a run config or a folder)")
    parsed = [_split(s) for s in sources]
    for _, path, _ in parsed:
        if not Path(path).exists():
            raise UserError(f"{shorten(path)}: no such file or folder")
    items: list[Item] = []
    for method, path, trials in parsed:
        if Path(path).is_file():
            if not path.endswith((".yaml", ".yml")):
                raise UserError(f"{shorten(path)}: a source is a run config (.yaml) or a folder "
                                "of PNGs")
            found, their = from_study(path, method, trials, best, storage)
            if label_set and their != label_set:
                raise UserError(f"{path}: its classes are {their}, the sheet's {label_set}; "
                                "make one sheet per label set")
            label_set = their
            items += found
    label_set = label_set or "imagenet"
    for method, path, _ in parsed:
        if Path(path).is_dir():
            items += from_folder(path, method, label_set)
    if len(items) > MAX_IMAGES:
        raise UserError(f"readers make: {len(items)} images; a sheet holds at most {MAX_IMAGES}")
    return items, label_set


def make(sources: list[str], out: str | Path, best: int = 4, seed: int | None = None,
         choices: int = 0, storage: str | None = None, label_set: str | None = None) -> Path:
    """Write ``out/sheet/`` and ``out/key.json``; returns the key's path. Nothing is written
    when a source is refused."""
    out, items, names, label_set, seed = _prepare(sources, out, best, seed, choices, storage,
                                                  label_set)
    return _sheet(out, items, names, label_set, seed, choices)


def make_rotated(sources: list[str], out: str | Path, best: int = 4, seed: int | None = None,
                 choices: int = 0, storage: str | None = None,
                 label_set: str | None = None) -> list[Path]:
    """One sheet per rotation (:func:`rotations`): ``out/rotation-K/sheet/`` and
    ``out/rotation-K/key.json``, sheet K shuffled with ``seed + K - 1``; returns the keys."""
    out, items, names, label_set, seed = _prepare(sources, out, best, seed, choices, storage,
                                                  label_set)
    return [_sheet(out / f"rotation-{k}", group, names, label_set, seed + k - 1, choices)
            for k, group in enumerate(rotations(items), 1)]


def _prepare(sources, out, best, seed, choices, storage, label_set):
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {shorten(str(out))}: exists and is not an empty folder")
    if choices == 1 or choices < 0:
        raise UserError(f"--choices {choices}: 0 (type the names) or 2 and more candidates")
    items, label_set = collect(sources, best, storage, label_set)
    names = labels.named(label_set)
    if choices > len(names):
        raise UserError(f"--choices {choices}: the {label_set} classes are {len(names)}")
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    return out, items, names, label_set, seed


def rotations(items: list[Item]) -> list[list[Item]]:
    """Sheets on which a reader meets each class once: the versions of a class (its methods,
    trials) in the sources' order, class ``j`` (by number) on sheet ``k`` from version
    ``(j + k) mod K``, ``K`` the most versions any class has (a Latin square). A reader who has
    named a class in one image finds it more easily in the next, which narrows the gaps
    between methods when each class appears several times on a sheet (docs/readers.md)."""
    by_class: dict[int, list[Item]] = {}
    for item in items:
        by_class.setdefault(item.cls, []).append(item)
    k = max(len(v) for v in by_class.values())
    sheets: list[list[Item]] = [[] for _ in range(k)]
    for j, cls in enumerate(sorted(by_class)):
        versions = by_class[cls]
        for s in range(k):
            if (j + s) % k < len(versions):
                sheets[s].append(versions[(j + s) % k])
    return [sheet for sheet in sheets if sheet]


def _sheet(out: Path, items: list[Item], names, label_set: str, seed: int,
           choices: int) -> Path:
    """Shuffle ``items`` with ``seed``, name them ``img_NN``, write the sheet and its key."""
    items = list(items)
    rng = random.Random(seed)
    rng.shuffle(items)
    width = max(2, len(str(len(items))))
    for i, item in enumerate(items, 1):
        item.image = f"img_{i:0{width}d}"
        if choices:
            others = rng.sample([n for j, n in enumerate(names) if j != item.cls], choices - 1)
            item.choices = [item.class_name, *others]
            rng.shuffle(item.choices)
    sheet_id = secrets.token_hex(6)
    _write(out, items, names, label_set, sheet_id, seed, choices)
    return out / "key.json"


def _write(out: Path, items: list[Item], names, label_set: str, sheet_id: str, seed: int,
           choices: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".readers-", dir=out.parent))
    try:
        sheet = tmp / "sheet"
        sheet.mkdir()
        for item in items:  # pixels only: no text chunk, no name of where it came from
            pixels = np.asarray(Image.open(item.origin).convert("RGB"))
            write_png(sheet / f"{item.image}.png", pixels)
        page = {"sheet": sheet_id, "mode": "choice" if choices else "name",
                "names": sorted(names, key=str.lower),
                "images": [{"image": it.image, "file": f"{it.image}.png",
                            **({"choices": it.choices} if choices else {})} for it in items]}
        template = resources.files("vissearch.readers").joinpath("sheet.html").read_text()
        data = json.dumps(page).replace("</", "<\\/")
        (sheet / "index.html").write_text(template.replace("__SHEET__", data), encoding="utf-8")
        key = {"format": KEY_FORMAT, "sheet": sheet_id, "seed": seed, "label_set": label_set,
               "mode": page["mode"], "choices": choices,
               "images": [asdict(it) for it in items]}
        (tmp / "key.json").write_text(json.dumps(key, indent=1), encoding="utf-8")
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
