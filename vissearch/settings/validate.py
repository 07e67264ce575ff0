"""Validation of settings: a pydantic model checks a mapping, and its first problem becomes one
line (key path, bad value, what is valid). No TensorFlow."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from vissearch.errors import UserError, closest, shorten


def format_validation_error(err: ValidationError, model: type[BaseModel]) -> str:
    """One line for the first problem: key path, bad value, what is valid."""
    e = err.errors()[0]
    loc = ".".join(_key(p) for p in e["loc"])
    if e["type"] == "extra_forbidden":
        parent = model
        for part in e["loc"][:-1]:
            field = parent.model_fields.get(str(part)) if isinstance(parent, type) else None
            ann = getattr(field, "annotation", None)
            parent = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        names = parent.model_fields if parent is not None else {}
        return f"{loc}: unknown key{closest(str(e['loc'][-1]), names)}"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] in ("value_error", "assertion_error"):
        return f"{loc}: {msg}" if loc else msg
    return f"{loc}: {msg}, got {shorten(e.get('input'))}"


def _key(part: object) -> str:
    """A key path part as written: plain when it is a name, quoted (repr) otherwise."""
    text = str(part)
    return text if text.isidentifier() or isinstance(part, int) else shorten(part, 40)


def parse(model: type[BaseModel], data: Any, where: str = "") -> Any:
    """Validate ``data`` against ``model``; a problem becomes a one-line :class:`UserError`."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        prefix = f"{where}: " if where else ""
        raise UserError(prefix + format_validation_error(err, model)) from None


def merged(base: BaseModel, overrides: dict[str, Any], where: str = "") -> Any:
    """A copy of ``base`` with ``overrides`` applied and validated again."""
    return parse(type(base), {**base.model_dump(), **overrides}, where=where)
