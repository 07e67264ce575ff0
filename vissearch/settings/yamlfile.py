"""Reading a user's YAML file: UTF-8, bounded, safe. No TensorFlow.

A config or search-space file is user input: it is read as UTF-8 (a Latin-1 byte or a UTF-16
file is one line saying so), at most :data:`MAX_BYTES`, with PyYAML's safe loader; and because
YAML aliases let a few lines stand for an exponentially large structure ("billion laughs") that
any later walk would expand, the loaded data may hold at most :data:`MAX_VALUES` values counted
with every alias expanded, and nest at most :data:`MAX_DEPTH` deep.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml

from vissearch.errors import UserError
from vissearch.files import check_path

MAX_BYTES = 1_000_000
MAX_VALUES = 100_000
MAX_DEPTH = 50
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def read(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping; any problem (missing, too big, not UTF-8, a syntax error with its
    line, an alias bomb, not a mapping) is one :class:`UserError` line."""
    p = Path(check_path(str(path), "file"))
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    if p.stat().st_size > MAX_BYTES:
        raise UserError(f"{p}: {p.stat().st_size:,} bytes; a config is at most {MAX_BYTES:,}")
    data = parse(p.read_bytes(), str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{p}: expected a mapping of sections, got {type(data).__name__}")
    return data


def parse(raw: bytes, where: str) -> Any:
    """YAML bytes to Python data, with the checks of :func:`read`."""
    if raw.startswith(_WIDE_BOMS):
        raise UserError(f"{where}: the file is UTF-16 or UTF-32; save it as UTF-8")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(f"{where}: not UTF-8: byte 0x{raw[err.start]:02x} at line {line}; "
                        "save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}: YAML syntax error{at}: {problem}") from None
    except RecursionError:
        raise UserError(f"{where}: nested too deeply") from None
    _check_size(data, where)
    return data


def _check_size(data: Any, where: str) -> None:
    """Count values with aliases expanded; stop as soon as the budget is spent."""
    count, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise UserError(f"{where}: expands to more than {MAX_VALUES:,} values (YAML aliases "
                            "repeating a block?); a config is far smaller")
        if depth > MAX_DEPTH:
            raise UserError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for kv in node.items() for v in kv)
        elif isinstance(node, list | tuple | set):
            stack.extend((v, depth + 1) for v in node)
