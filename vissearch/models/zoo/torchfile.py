"""Read a PyTorch checkpoint of the legacy (pre-zip) format into NumPy arrays, without torch.

``(path) => {name: np.ndarray}``. The file is five records one after another: four pickles
(magic number, protocol version, system info, the state dict) and a pickled list of storage keys,
then, per key, an 8-byte little-endian element count and the raw little-endian data. The state
dict's tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` calls
whose storages are persistent ids ``('storage', StorageType, key, location, numel, view)``.

Unpickling runs code named by the file, so the reader allows exactly the few names such a
checkpoint holds (an ``OrderedDict``, the tensor rebuild function, the storage types) and refuses
anything else with one line: a checkpoint from the internet is data, not a program.
"""

from __future__ import annotations

import collections
import math
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from vissearch.errors import UserError

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
MAX_ELEMENTS = 2**31  # of one storage: more than any checkpoint this reader is for holds
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: type
    numel: int


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None) -> _Tensor:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("a tensor whose storage is not a storage record")
    return _Tensor(storage, int(offset), tuple(int(s) for s in size),
                   tuple(int(s) for s in stride))


class _StorageType:
    """A storage type as the file names it. Slotted and read through the name, so that a BUILD
    opcode aimed at it can neither add attributes nor pick another dtype."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    @property
    def dtype(self) -> type:
        return STORAGE_DTYPES[self.name]


class _Rebuild:
    """What the file's ``torch._utils._rebuild_tensor_v2`` resolves to: a fresh slotted callable
    (a BUILD opcode cannot rewrite the defaults or attributes of a shared function)."""

    __slots__ = ()

    def __call__(self, *args, **kwargs) -> _Tensor:
        return _rebuild_tensor_v2(*args, **kwargs)


class _Restricted(pickle.Unpickler):
    """An unpickler that resolves only the names a legacy state dict needs."""

    def __init__(self, f: BinaryIO, allow_tensors: bool):
        super().__init__(f)
        self.allow_tensors = allow_tensors
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if self.allow_tensors and (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _Rebuild()
        if self.allow_tensors and module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: a checkpoint may name "
                                     "only tensors, storages and OrderedDict")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (self.allow_tensors and isinstance(pid, tuple) and len(pid) >= 5
                and pid[0] == "storage" and isinstance(pid[1], _StorageType)
                and isinstance(pid[2], str) and isinstance(pid[4], int)):
            # the type only: repr of a crafted, deeply nested id would recurse
            raise pickle.UnpicklingError(f"unexpected persistent id (a {type(pid).__name__})")
        key, numel = pid[2][:100], pid[4]
        if not 0 <= numel <= MAX_ELEMENTS:
            raise pickle.UnpicklingError(f"storage {key} claims {numel} elements (at most "
                                         f"{MAX_ELEMENTS})")
        return self.storages.setdefault(key, _Storage(key, pid[1].dtype, numel))


def _load(f: BinaryIO) -> Any:
    """One plain pickle (numbers, strings, lists, dicts): no names resolve."""
    return _Restricted(f, allow_tensors=False).load()


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy ``.pth`` file as arrays; ``num_batches_tracked`` counters included.

    Raises:
        UserError: the file is not a legacy checkpoint, is truncated, or names anything
            outside the allowed few.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _read(f)
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError,
            KeyError, AttributeError, IndexError, RecursionError, OverflowError,
            MemoryError) as err:
        detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise UserError(f"{path}: not a readable legacy PyTorch checkpoint: {detail}") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read: {err.strerror or err}") from None


def _read(f: BinaryIO) -> dict[str, np.ndarray]:
    size = os.fstat(f.fileno()).st_size
    if _load(f) != MAGIC:
        raise ValueError("wrong magic number (a zip-format or non-torch file?)")
    if _load(f) != PROTOCOL:
        raise ValueError("unknown protocol version")
    info = _load(f)
    if not isinstance(info, dict) or not info.get("little_endian", False):
        raise ValueError("not a little-endian checkpoint")
    u = _Restricted(f, allow_tensors=True)
    state = u.load()
    if not isinstance(state, dict):
        raise ValueError(f"expected a state dict, got {type(state).__name__}")
    keys = _load(f)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError("malformed storage key list")
    data: dict[str, np.ndarray] = {}
    for key in keys:
        storage = u.storages.get(key)
        if storage is None:
            raise ValueError(f"storage {key} is not used by any tensor")
        head = f.read(8)
        if len(head) != 8:
            raise EOFError(f"file ends before storage {key}")
        (count,) = struct.unpack("<q", head)
        if count != storage.numel:
            raise ValueError(f"storage {key} holds {count} elements, expected {storage.numel}")
        nbytes = count * np.dtype(storage.dtype).itemsize
        if nbytes > size - f.tell():
            raise EOFError(f"storage {key} claims {nbytes} bytes; the file has fewer left")
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise EOFError(f"file ends inside storage {key} (truncated)")
        data[key] = np.frombuffer(raw, dtype=storage.dtype)
    return {name: _materialize(t, data) for name, t in state.items()}


def _materialize(t: Any, data: dict[str, np.ndarray]) -> np.ndarray:
    if not isinstance(t, _Tensor):
        raise ValueError(f"state dict entry of type {type(t).__name__}, not a tensor")
    if t.storage.key not in data:
        raise ValueError(f"storage {t.storage.key} is missing")
    flat = data[t.storage.key]
    need = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True)) + 1
    if any(n == 0 for n in t.size):
        return np.zeros(t.size, flat.dtype)
    if t.offset < 0 or min(t.stride, default=0) < 0 or need > flat.size:
        raise ValueError("a tensor reaches outside its storage")
    if math.prod(t.size) > flat.size:  # stride 0 would repeat a few bytes into gigabytes
        raise ValueError(f"a tensor of {math.prod(t.size)} elements over a storage of "
                         f"{flat.size}")
    item = flat.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(flat[t.offset:], shape=t.size,
                                           strides=[s * item for s in t.stride])
    return np.array(view)
