"""A run's data as standard JSON and back: numbers, strings, containers, arrays and tensors.

:func:`dumps` turns what an experiment returned (a phenomenon's ``run()``: per-seed numbers,
curves, arrays) into JSON text that any tool reads, and :func:`loads` gives the same values
back:

========================  ====================================================================
recorded                  comes back as
========================  ====================================================================
``None``, bool, int, str  the same (subclasses such as enums: the plain bool, int or str)
float                     float; NaN, +Inf and -Inf are recorded as themselves (not dropped)
list                      list
tuple                     tuple (a named tuple: a plain tuple)
dict                      dict (a dict subclass: a dict); keys that are not strings (ints,
                          tuples, numpy scalars) keep their type; the order is kept
numpy array (bool, int,   numpy array of the same dtype and shape, values exactly (NaN as NaN)
uint, float, str dtypes)
numpy scalar (same        numpy scalar of the same dtype
dtypes)
torch tensor (bool, int,  a CPU torch tensor of the same dtype and shape, values exactly;
float dtypes, any         not requiring grad (the device and the autograd graph are not
device)                   recorded)
dataclass instance        an instance of its class, found by module and name among the
                          modules already imported (a ``trainlab`` module is imported if
                          needed; nothing else is); where the class is not found, or is not
                          a dataclass, or no longer takes those fields: a dict of the fields,
                          with a warning
anything else (objects,   an :class:`Omitted` marker in its place, with a warning on the
complex numbers, sets,    ``trainlab`` logger naming where it was
a container holding
itself)
========================  ====================================================================

Plain values are written as themselves, so the text stays readable (``jq``, a reader quoting
a per-seed value). The other kinds are JSON objects tagged ``{"__trainlab__": kind, ...}``;
an array's values are one flat list in C order beside its ``dtype`` and ``shape``, with
``"nan"``, ``"inf"`` and ``"-inf"`` standing for the non-finite floats (standard JSON has no
NaN). A value that appears twice comes back as two equal copies. A dict whose keys are not
all strings, or that has the key ``"__trainlab__"`` itself, is
written as a tagged list of key-value pairs, so no user value is mistaken for a tag.

Size: the text is capped at ``limit_bytes`` (:data:`DATA_LIMIT_BYTES` by default). Over the
cap, the largest top-level entries of a dict with string keys are replaced by
:class:`Omitted` markers until it fits (any other value is left out whole), and a warning on
the ``trainlab`` logger names each entry left out and its size.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from trainlab.errors import check_range

log = logging.getLogger("trainlab")

TAG = "__trainlab__"
DATA_LIMIT_BYTES = 4 * 2**20
"""Default cap on the JSON text of one run's data (4 MiB)."""

_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_ARRAY_KINDS = "biufU"  # numpy dtype kinds recorded: bool, int, unsigned int, float, str


def _dtype_name(dtype: np.dtype) -> str:
    """``float32``, ``int64``, ``bool``; ``<U5`` for strings (whose name numpy cannot read)."""
    return dtype.str if dtype.kind == "U" else dtype.name


@dataclass(frozen=True)
class Omitted:
    """Stands where a value was left out of the record: its type and why."""

    type: str
    reason: str


def _float(x: float) -> Any:
    return x if math.isfinite(x) else str(x)  # 'nan', 'inf', '-inf'


def _flat(values: list[Any], is_float: bool) -> list[Any]:
    return [_float(v) for v in values] if is_float else values


class _Encoder:
    """One encoding pass; ``left_out`` collects ``(path, type)`` of what was not recordable."""

    def __init__(self) -> None:
        self.left_out: list[tuple[str, str]] = []
        self.torch = sys.modules.get("torch")  # nothing is a tensor unless torch is imported
        self.open: set[int] = set()  # ids of the containers being encoded (cycle check)

    def omit(self, obj: Any, path: str, reason: str) -> dict[str, Any]:
        kind = type(obj).__name__
        self.left_out.append((path, kind))
        return {TAG: "omitted", "type": kind, "reason": reason}

    def encode(self, obj: Any, path: str) -> Any:
        if isinstance(obj, np.generic):  # before float: np.float64 is a float subclass
            if obj.dtype.kind not in _ARRAY_KINDS:
                return self.omit(obj, path, f"numpy dtype {obj.dtype} is not recorded")
            value = obj.item()
            return {TAG: "npscalar", "dtype": _dtype_name(obj.dtype),
                    "value": _float(value) if obj.dtype.kind == "f" else value}
        if obj is None or isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {TAG: "float", "value": str(obj)}
        is_record = dataclasses.is_dataclass(obj) and not isinstance(obj, type)
        if is_record or isinstance(obj, (list, tuple, dict)):
            if id(obj) in self.open:
                return self.omit(obj, path, "contains itself")
            self.open.add(id(obj))
            try:
                return self.container(obj, path)
            finally:
                self.open.discard(id(obj))
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind not in _ARRAY_KINDS:
                return self.omit(obj, path, f"numpy dtype {obj.dtype} is not recorded")
            return {TAG: "ndarray", "dtype": _dtype_name(obj.dtype), "shape": list(obj.shape),
                    "data": _flat(obj.ravel().tolist(), obj.dtype.kind == "f")}
        if self.torch is not None and isinstance(obj, self.torch.Tensor):
            return self.tensor(obj, path)
        return self.omit(obj, path, "not a recordable type")

    def container(self, obj: Any, path: str) -> Any:
        if dataclasses.is_dataclass(obj):
            cls = type(obj)
            return {TAG: "dataclass", "type": f"{cls.__module__}:{cls.__qualname__}",
                    "fields": {f.name: self.encode(getattr(obj, f.name), f"{path}.{f.name}")
                               for f in dataclasses.fields(obj)}}
        if isinstance(obj, list):
            return [self.encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {TAG: "tuple", "items": [self.encode(v, f"{path}[{i}]")
                                            for i, v in enumerate(obj)]}
        if all(isinstance(k, str) for k in obj) and TAG not in obj:
            return {k: self.encode(v, f"{path}[{k!r}]") for k, v in obj.items()}
        return {TAG: "dict", "items": [[self.encode(k, f"{path} key {k!r}"),
                                        self.encode(v, f"{path}[{k!r}]")]
                                       for k, v in obj.items()]}

    def tensor(self, t: Any, path: str) -> Any:
        if t.is_complex() or t.is_quantized or t.layout != self.torch.strided:
            return self.omit(t, path, f"a tensor of dtype {t.dtype} and layout {t.layout} "
                                      f"is not recorded")
        return {TAG: "tensor", "dtype": str(t.dtype).removeprefix("torch."),
                "shape": list(t.shape),
                "data": _flat(t.detach().cpu().reshape(-1).tolist(), t.is_floating_point())}


def _decode_flat(values: list[Any]) -> list[Any]:
    return [_NONFINITE[v] if isinstance(v, str) else v for v in values]


def decode(obj: Any) -> Any:
    """The value whose encoding is ``obj`` (the parsed JSON of :func:`dumps`)."""
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    kind = obj.get(TAG)
    if kind is None:
        return {k: decode(v) for k, v in obj.items()}
    if kind == "float":
        return _NONFINITE[obj["value"]]
    if kind == "tuple":
        return tuple(decode(v) for v in obj["items"])
    if kind == "dict":
        return {decode(k): decode(v) for k, v in obj["items"]}
    if kind == "ndarray":
        dtype = np.dtype(obj["dtype"])
        data = _decode_flat(obj["data"]) if dtype.kind == "f" else obj["data"]
        return np.array(data, dtype=dtype).reshape(obj["shape"])
    if kind == "npscalar":
        dtype, value = np.dtype(obj["dtype"]), obj["value"]
        return dtype.type(_NONFINITE[value] if dtype.kind == "f" and isinstance(value, str)
                          else value)
    if kind == "tensor":
        import torch

        return torch.tensor(_decode_flat(obj["data"]), dtype=getattr(torch, obj["dtype"])
                            ).reshape(obj["shape"])
    if kind == "dataclass":
        return _dataclass(obj["type"], {k: decode(v) for k, v in obj["fields"].items()})
    if kind == "omitted":
        return Omitted(obj["type"], obj["reason"])
    raise ValueError(f"unknown recorded kind {kind!r} (known: float, tuple, dict, ndarray, "
                     f"npscalar, tensor, dataclass, omitted)")


def _loaded_class(module: str, qualname: str) -> Any:
    """The class ``module:qualname`` if its module is imported (or is trainlab's own) and it
    is a dataclass; else None. Recorded data names no module that gets imported otherwise."""
    mod = sys.modules.get(module)
    if mod is None and (module == "trainlab" or module.startswith("trainlab.")):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            return None
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    ok = isinstance(obj, type) and dataclasses.is_dataclass(obj)
    return obj if ok else None


def _dataclass(type_name: str, fields: dict[str, Any]) -> Any:
    """An instance of the recorded dataclass ``type_name`` with ``fields``, or the fields as
    a dict (with a warning) where that class cannot be found or built from them."""
    module, _, qualname = type_name.partition(":")
    cls = _loaded_class(module, qualname)
    reason = "is not an imported dataclass"
    if cls is not None:
        try:
            spec = {f.name: f.init for f in dataclasses.fields(cls)}
            if set(spec) != set(fields):
                raise TypeError(f"its fields are now {sorted(spec)}, recorded {sorted(fields)}")
            obj = cls(**{k: v for k, v in fields.items() if spec[k]})
            for k in (k for k, init in spec.items() if not init):
                object.__setattr__(obj, k, fields[k])
            return obj
        except Exception as exc:
            reason = f"cannot be built from the recorded fields ({exc})"
    log.warning("recorded data: the class %s %s; its fields come back as a dict", type_name,
                reason)
    return fields


def _text(enc: Any) -> str:
    return json.dumps(enc, allow_nan=False, separators=(",", ":"))


def _size(enc: Any) -> int:
    return len(_text(enc).encode())


def _kind(enc: Any) -> str:
    """What an encoded value is, for its marker: its tag, or its JSON type."""
    if isinstance(enc, dict):
        return str(enc.get(TAG, "dict"))
    return type(enc).__name__


def _cap(enc: Any, limit_bytes: int, what: str) -> Any:
    """``enc`` with its largest top-level entries left out until its text fits in
    ``limit_bytes`` (all of it where that is not enough), with a warning naming them."""
    needed = total = _size(enc)
    if needed <= limit_bytes:
        return enc
    dropped: list[tuple[str, int]] = []
    if isinstance(enc, dict) and TAG not in enc:
        enc = dict(enc)
        sizes = {k: _size(v) for k, v in enc.items()}
        for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
            if total <= limit_bytes:
                break
            marker = {TAG: "omitted", "type": _kind(enc[key]),
                      "reason": f"{sizes[key]} bytes: over the size limit of the record"}
            total += _size(marker) - sizes[key]  # compact JSON: the key's text is unchanged
            enc[key] = marker
            dropped.append((f"data[{key!r}]", sizes[key]))
    if total > limit_bytes:
        dropped = [("data", needed)]
        enc = {TAG: "omitted", "type": _kind(enc),
               "reason": f"{needed} bytes: over the size limit of the record"}
    log.warning("%s: the recorded data is capped at %d bytes and needed %d; left out: %s",
                what, limit_bytes, needed, ", ".join(f"{p} ({n} bytes)" for p, n in dropped))
    return enc


def dumps(obj: Any, *, limit_bytes: int | None = None, what: str = "run data") -> str:
    """``obj`` as JSON text (see the module docstring for what is recorded and how), at most
    ``limit_bytes`` (>= 1024; default :data:`DATA_LIMIT_BYTES`) long; ``what`` names the
    data in the warnings (values left out as not recordable, entries left out over the
    cap)."""
    limit_bytes = DATA_LIMIT_BYTES if limit_bytes is None else limit_bytes
    check_range("limit_bytes", limit_bytes, low=1024, owner="json_codec.dumps")
    encoder = _Encoder()
    enc = encoder.encode(obj, "data")
    if encoder.left_out:
        log.warning("%s: left out of the record (not recordable): %s", what,
                    ", ".join(f"{p} ({t})" for p, t in encoder.left_out))
    return _text(_cap(enc, limit_bytes, what))


def loads(text: str | bytes) -> Any:
    """The value recorded by :func:`dumps` (an :class:`Omitted` where a value was left out)."""
    return decode(json.loads(text))


def omitted(obj: Any, path: str = "data") -> list[str]:
    """Where :func:`loads`'s result holds :class:`Omitted` markers (``data['x'][2]``, ...)."""
    if isinstance(obj, Omitted):
        return [path]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [p for f in dataclasses.fields(obj)
                for p in omitted(getattr(obj, f.name), f"{path}.{f.name}")]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in omitted(v, f"{path}[{k!r}]")]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in omitted(v, f"{path}[{i}]")]
    return []
