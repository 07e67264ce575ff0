"""Readers' answers -> whether they named the class, and figures per image and per group.

``(answers, key) => figures``. A reader's answer to one image is up to three guesses and a
confidence (2 clear, 1 a guess, 0 cannot tell). A guess names a class when, lower-cased and
with a plural ``s`` dropped, it is one of the class's names or synonyms (``billiard table`` for
pool table), contains one as whole words (``a pool table``), or is the last words of one that
picks out at most :data:`MAX_SUFFIX_CLASSES` classes (``eagle`` for bald eagle; ``bear`` picks
out five classes and names none). No TensorFlow, no Optuna.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_SUFFIX_CLASSES = 2
CONFIDENCE = {"2": 2, "clear": 2, "1": 1, "guess": 1, "a guess": 1, "0": 0,
              "cannot tell": 0, "": 0}


def normal(text: str) -> str:
    """Lower case, letters and digits only, single spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _forms(guess: str) -> list[str]:
    g = normal(guess)
    out = [g]
    for end in ("es", "s"):
        if g.endswith(end) and len(g) > len(end) + 2:
            out.append(g[: -len(end)])
    return out


class Names:
    """The names a label set's classes answer to: ``{class index: (name, synonym, ...)}``."""

    def __init__(self, names: Mapping[int, Iterable[str]]):
        self.names = {i: tuple(dict.fromkeys(normal(n) for n in ns if normal(n)))
                      for i, ns in names.items()}
        suffixes: dict[str, set[int]] = {}
        for i, ns in self.names.items():
            for n in ns:
                words = n.split()
                for k in range(1, len(words)):
                    suffixes.setdefault(" ".join(words[k:]), set()).add(i)
        self.suffixes = suffixes

    def names_class(self, guess: str, index: int) -> bool:
        """Whether ``guess`` names class ``index``."""
        own = self.names.get(index, ())
        for g in _forms(guess):
            if not g:
                continue
            padded = f" {g} "
            if any(g == n or f" {n} " in padded for n in own):
                return True
            hits = self.suffixes.get(g, set())
            if index in hits and len(hits) <= MAX_SUFFIX_CLASSES:
                return True
        return False


@functools.cache
def for_label_set(label_set: str) -> Names:
    """The names of ``imagenet`` (with ImageNet's WordNet synonyms) or ``shapes``."""
    from vissearch.models import labels

    shown = labels.named(label_set)
    synonyms = labels.synonyms(label_set)
    return Names({i: (shown[i], *synonyms.get(i, ())) for i in range(len(shown))})


@dataclass(frozen=True)
class Answer:
    """One reader's answer to one image."""

    reader: str
    image: str
    guesses: tuple[str, ...]
    confidence: int


def figures(answers: Sequence[Answer], truth: Mapping[str, int], names: Names) -> dict:
    """Per image: ``n`` readers, ``named`` (first guess right), ``named3`` (any of three),
    ``confident`` (first guess right and said clear), as counts, and ``agree`` (the share of
    pairs of readers whose first guesses are the same words or both name the class)."""
    out: dict[str, dict] = {image: {"n": 0, "named": 0, "named3": 0, "confident": 0,
                                    "firsts": []} for image in truth}
    for a in answers:
        row, cls = out[a.image], truth[a.image]
        right = [bool(g.strip()) and names.names_class(g, cls) for g in a.guesses[:3]]
        first = bool(right) and right[0]
        row["n"] += 1
        row["named"] += first
        row["named3"] += any(right)
        row["confident"] += first and a.confidence == 2
        row["firsts"].append("<class>" if first else normal(a.guesses[0]) if a.guesses else "")
    for row in out.values():
        firsts = row.pop("firsts")
        pairs = [(x, y) for i, x in enumerate(firsts) for y in firsts[i + 1:]]
        row["agree"] = (sum(x == y and x != "" for x, y in pairs) / len(pairs)
                        if pairs else float("nan"))
    return out
