"""``readers score``: readers' answers against a sheet's key -> tables, and figures into studies.

``(key, answers...) => figures.md, figures.csv (+ trial user attributes)``. Answers are the
JSON files the sheet saves, or text files of lines ``img_NN | guess ; guess ; guess | 2`` (the
reader is the file's name; the confidence is 2 clear, 1 a guess, 0 cannot tell). For images
from a study, each trial gets ``readers`` (counts per sheet, so scoring a sheet again replaces
its own counts) and the totals ``readers_named``, ``readers_named3``, ``readers_confident``
(shares of judgments) and ``readers_n`` (judgments), which ``leaderboard`` shows.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

from vissearch.errors import UserError, shorten
from vissearch.files import atomic_write
from vissearch.readers.make import KEY_FORMAT
from vissearch.scoring import naming

ANSWERS_FORMAT = "vissearch-readers-answers/1"
MAX_BYTES = 20 * 2**20


def read_key(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{shorten(str(path))}: no such key file (readers make writes "
                        "OUT/key.json)")
    try:
        key = json.loads(path.read_text(encoding="utf-8")[:MAX_BYTES])
    except (UnicodeDecodeError, json.JSONDecodeError):
        key = None
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT:
        raise UserError(f"{shorten(str(path))}: not a readers key (expected the key.json that "
                        "readers make writes)")
    return key


def read_answers(path: str | Path, key: dict) -> list[naming.Answer]:
    """One reader's answers, as JSON from the sheet or as text lines."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{shorten(str(path))}: no such answers file")
    try:
        text = path.read_text(encoding="utf-8")[:MAX_BYTES]
    except UnicodeDecodeError:
        raise UserError(f"{shorten(str(path))}: not text (expected the sheet's JSON answers or "
                        "lines 'img_NN | guess ; guess ; guess | 2')") from None
    known = {item["image"] for item in key["images"]}
    answers = (_json_answers(path, text, key) if text.lstrip().startswith("{") else
               _text_answers(path, text))
    strange = sorted({a.image for a in answers} - known)
    if strange:
        raise UserError(f"{shorten(str(path))}: answers for images this sheet does not have "
                        f"({', '.join(strange[:5])}): answers for another sheet?")
    if not answers:
        raise UserError(f"{shorten(str(path))}: no answers in it (expected the sheet's JSON "
                        "answers or lines 'img_NN | guess ; guess ; guess | 2')")
    return answers


def _json_answers(path: Path, text: str, key: dict) -> list[naming.Answer]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or body.get("format") != ANSWERS_FORMAT:
        raise UserError(f"{shorten(str(path))}: not a readers answers file (expected the JSON "
                        "the sheet saves)")
    if body.get("sheet") != key["sheet"]:
        other = str(body.get("sheet"))[:20]
        raise UserError(f"{shorten(str(path))}: answers for another sheet ({other!r}; the key "
                        f"is sheet {key['sheet']!r})")
    reader = str(body.get("reader") or path.stem)[:80]
    out = []
    for image, a in (body.get("answers") or {}).items():
        if not isinstance(a, dict):
            continue
        guesses = tuple(str(g)[:200] for g in (a.get("guesses") or [])[:3])
        confidence = a.get("confidence")
        if not any(g.strip() for g in guesses) and confidence is None:
            continue  # not answered
        out.append(naming.Answer(reader, str(image), guesses,
                                 int(confidence) if confidence in (0, 1, 2) else 1))
    return out


def _text_answers(path: Path, text: str) -> list[naming.Answer]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not parts[0]:
            raise UserError(f"{shorten(str(path))} line {n}: expected 'img_NN | guess ; guess ; "
                            f"guess | 2', got {shorten(line)}")
        confidence = naming.CONFIDENCE.get(parts[2].lower())
        if confidence is None:
            raise UserError(f"{shorten(str(path))} line {n}: confidence {shorten(parts[2])}: "
                            "2 (clear), 1 (a guess) or 0 (cannot tell)")
        guesses = tuple(g.strip() for g in parts[1].split(";"))[:3]
        out.append(naming.Answer(path.stem, parts[0], guesses, confidence))
    return out


def table(rows: list[dict], by: tuple[str, ...]) -> list[dict]:
    """Per-image rows grouped by ``by``: images, judgments and the shares of judgments."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in by)].append(row)
    out = []
    for values, members in sorted(groups.items(), key=lambda kv: [str(v) for v in kv[0]]):
        n = sum(m["n"] for m in members)
        agree = [m["agree"] for m in members if not math.isnan(m["agree"])]
        out.append({**dict(zip(by, values, strict=True)), "images": len(members),
                    "judgments": n,
                    **{k: (sum(m[k] for m in members) / n if n else float("nan"))
                       for k in ("named", "named3", "confident")},
                    "agree": sum(agree) / len(agree) if agree else float("nan")})
    return out


def score(key_path: str | Path, answer_paths: list[str], out: str | Path | None = None,
          storage: str | None = None, write_back: bool = True) -> dict[str, list[dict]]:
    """Score every answers file against the key; write the tables (and the studies' figures)."""
    key = read_key(key_path)
    if not answer_paths:
        raise UserError("readers score: name at least one answers file")
    answers = [a for p in answer_paths for a in read_answers(p, key)]
    names = naming.for_label_set(key["label_set"])
    by_image = {item["image"]: item for item in key["images"]}
    per_image = naming.figures(answers, {i: it["cls"] for i, it in by_image.items()}, names)
    rows = [{**{k: by_image[i][k] for k in ("image", "method", "study", "trial", "cls",
                                             "class_name")}, **f}
            for i, f in per_image.items() if f["n"]]
    tables = {"method": table(rows, ("method",)),
              "trial": table([r for r in rows if r["study"]], ("method", "study", "trial")),
              "class": table(rows, ("class_name",)),
              "image": table(rows, ("image", "method", "class_name"))}
    out = Path(out) if out else Path(key_path).parent / "figures"
    _write_tables(out, tables, len({a.reader for a in answers}))
    if write_back:
        from vissearch.readers.studies import write_figures

        write_figures(key, rows, storage)
    return tables


def pool(folders: list[str], out: str | Path) -> dict[str, list[dict]]:
    """Pool scored sheets (``readers make --rotate``'s rotations, each scored with its own
    readers): their ``by_image.csv`` tables, or the folders that hold ``figures/by_image.csv``,
    into one set of tables by method and class, written to ``out``."""
    rows = scored_rows(folders)
    tables = {"method": table(rows, ("method",)), "class": table(rows, ("class_name",))}
    _write_tables(Path(out), tables, readers=0)
    return tables


def scored_rows(folders: list[str]) -> list[dict]:
    """The images of scored sheets (their ``by_image.csv``, or folders that hold it or
    ``figures/by_image.csv``) as rows :func:`table` groups: counts of judgments, not shares."""
    rows = []
    for folder in folders:
        path = Path(folder)
        found = next((f for f in (path / "by_image.csv", path / "figures" / "by_image.csv",
                                  path) if f.is_file() and f.name == "by_image.csv"), None)
        if found is None:
            raise UserError(f"readers pool: {shorten(folder)}: no by_image.csv in it or in its "
                            "figures/ (score the sheet first: readers score KEY ANSWERS...)")
        with open(found, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                n = int(r["judgments"])
                rows.append({"method": r["method"], "class_name": r["class_name"], "n": n,
                             **{k: float(r[k]) * n for k in ("named", "named3", "confident")},
                             "agree": float(r["agree"])})
    if not rows:
        raise UserError("readers pool: the sheets hold no scored image")
    return rows


def _write_tables(out: Path, tables: dict[str, list[dict]], readers: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    md = [f"# Readers' figures ({readers} readers)\n" if readers else "# Readers' figures, "
          "several sheets pooled\n",
          "named: first guess right; named3: right in any of three; confident: first guess "
          "right and said clear (shares of judgments); agree: share of pairs of readers whose "
          "first guesses agree.\n"]
    for name, rows in tables.items():
        if not rows:
            continue
        cols = list(rows[0])
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)
        _publish(out / f"by_{name}.csv", buf.getvalue())
        md.append(f"\n## By {name}\n\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for r in rows:
            md.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v)
                                        for v in r.values()) + " |")
    _publish(out / "figures.md", "\n".join(md) + "\n")


def _publish(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
