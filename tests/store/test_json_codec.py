"""``trainlab.store.json_codec``: every supported type comes back with its type, dtype, shape
and exact values (NaN/Inf included), the text is standard JSON, what cannot be recorded is
marked and named in a warning, and the size cap leaves out the largest entries, named."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainlab.errors import ConfigError
from trainlab.store import json_codec
from trainlab.store.json_codec import TAG, Omitted


@dataclass(frozen=True)
class _Point:
    """A record a run might return (frozen, a default, a field set after __init__)."""

    x: float
    curve: np.ndarray
    label: str = "a"
    count: int = field(init=False, default=0)


@dataclass
class _Holder:
    points: list
    other: object = None


def _strict_json(text: str):
    """Parse as standard JSON: a bare NaN/Infinity token raises."""
    def bad(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=bad)


def _same(a, b) -> bool:
    """Equal in type and value, recursively; NaN equals NaN; floats compared bit for bit
    (so -0.0 != 0.0); arrays and tensors also in dtype and shape."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            np.float64(a).view(np.int64) == np.float64(b).view(np.int64))
    if isinstance(a, np.ndarray | np.generic):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        a, b = np.asarray(a), np.asarray(b)
        if a.dtype.kind == "f":
            nan = np.isnan(a)
            bits = f"u{a.dtype.itemsize}"
            return bool(np.array_equal(nan, np.isnan(b))
                        and np.array_equal(a[~nan].view(bits), b[~nan].view(bits)))
        return bool(np.array_equal(a, b))
    if isinstance(a, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape or b.requires_grad:
            return False
        if a.is_floating_point():
            a64, b64 = a.detach().double(), b.double()
            nan = a64.isnan()
            return bool(torch.equal(nan, b64.isnan())
                        and torch.equal(a64[~nan].view(torch.int64), b64[~nan].view(torch.int64)))
        return bool(torch.equal(a, b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return (list(a) == list(b)  # same keys in the same order
                and all(_same(ka, kb) for ka, kb in zip(a, b, strict=True))
                and all(_same(a[k], b[k]) for k in a))
    return a == b


def _roundtrip(obj):
    text = json_codec.dumps(obj)
    _strict_json(text)
    return json_codec.loads(text)


NAN, INF = float("nan"), float("inf")
CASES = {
    "none": None, "bools": [True, False], "big int": 2**70, "negative int": -3,
    "str": "héllo \"quoted\"", "floats": [0.1, -0.0, 1e-310, 1.7976931348623157e308],
    "non-finite floats": [NAN, INF, -INF],
    "tuple": (1, (2.5, "x"), [None, (NAN,)]),
    "dict with str keys": {"b": 1, "a": {"z": [1.5]}},
    "dict with other keys": {3: "three", (1, 2): [0.5], 2.5: None, "s": 1, -1: INF},
    "dict with numpy keys": {np.int64(4): 1.0, np.float32(0.5): 2.0},
    "dict using the tag key": {TAG: "ndarray", "dtype": "float64"},
    "empty": [[], (), {}],
}
ARRAYS = {
    "float64": np.array([[1.0, NAN], [INF, -INF], [-0.0, 1e-300]]),
    "float32": np.random.default_rng(0).standard_normal((3, 4, 2)).astype(np.float32),
    "float16": np.array([1.5, NAN, 65504.0, -INF], dtype=np.float16),
    "int8": np.array([-128, 0, 127], dtype=np.int8),
    "int64": np.array([[-(2**63), 2**63 - 1]], dtype=np.int64),
    "uint64": np.array([2**64 - 1, 0], dtype=np.uint64),
    "uint8": np.arange(6, dtype=np.uint8).reshape(2, 3),
    "bool": np.array([[True], [False]]),
    "str": np.array([["ab", "ç"], ["", "long string"]]),
    "0-d": np.array(2.5),
    "empty 0x3": np.zeros((0, 3), dtype=np.float32),
    "transposed (not contiguous)": np.arange(12.0).reshape(3, 4).T,
}
SCALARS = [np.float64(0.25), np.float32(NAN), np.float16(-INF), np.int32(-7),
           np.uint64(2**64 - 1), np.bool_(False), np.str_("label")]
TENSORS = {
    "float32": torch.tensor([[1.0, NAN], [INF, -INF]]),
    "float64": torch.randn(2, 3, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64),
    "bfloat16": torch.tensor([1.0, 3.14159, NAN, -1e30], dtype=torch.bfloat16),
    "float16": torch.tensor([0.1, 65504.0], dtype=torch.float16),
    "int64": torch.tensor([-(2**63), 2**63 - 1]),
    "uint8": torch.tensor([0, 255], dtype=torch.uint8),
    "bool": torch.tensor([True, False]),
    "0-d": torch.tensor(7.0),
    "empty": torch.zeros(0, 2),
    "not contiguous": torch.arange(6.0).reshape(2, 3).t(),
}


@pytest.mark.parametrize("name", list(CASES))
def test_plain_values_and_containers_come_back_as_they_were(name):
    assert _same(CASES[name], _roundtrip(CASES[name]))


@pytest.mark.parametrize("name", list(ARRAYS))
def test_numpy_arrays_keep_dtype_shape_and_exact_values(name):
    back = _roundtrip({"a": ARRAYS[name]})["a"]
    assert isinstance(back, np.ndarray) and _same(ARRAYS[name], back)


@pytest.mark.parametrize("value", SCALARS, ids=lambda v: type(v).__name__)
def test_numpy_scalars_keep_their_dtype(value):
    back = _roundtrip([value])[0]
    assert type(back) is type(value) and _same(value, back)


@pytest.mark.parametrize("name", list(TENSORS))
def test_torch_tensors_keep_dtype_shape_and_exact_values(name):
    back = _roundtrip((TENSORS[name],))[0]
    assert isinstance(back, torch.Tensor) and _same(TENSORS[name], back)


def test_a_tensor_requiring_grad_comes_back_detached():
    t = torch.tensor([1.0, 2.0], requires_grad=True) * 3
    back = _roundtrip(t)
    assert not back.requires_grad and torch.equal(back, t.detach())


def test_non_finite_values_are_written_as_strings_in_standard_json():
    text = json_codec.dumps({"x": NAN, "a": np.array([INF, -INF])})
    parsed = _strict_json(text)
    assert parsed["x"] == {TAG: "float", "value": "nan"}
    assert parsed["a"]["data"] == ["inf", "-inf"] and parsed["a"]["shape"] == [2]


_leaf = (st.none() | st.booleans() | st.integers() | st.text(max_size=5)
         | st.floats(allow_nan=True, allow_infinity=True))
_nested = st.recursive(
    _leaf, lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                          | st.dictionaries(st.text(max_size=4) | st.integers(), inner,
                                            max_size=4)),
    max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(_nested)
def test_any_nesting_of_plain_values_round_trips(obj):
    assert _same(obj, _roundtrip(obj))


def test_what_cannot_be_recorded_is_marked_and_named(caplog):
    data = {"ok": 1.0, "model": torch.nn.Linear(2, 2), "z": [1, 2j],
            "spectrum": np.array([1 + 1j]), "t": torch.tensor([1j]), "s": {1, 2}}
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        back = _roundtrip(data)
    assert back["ok"] == 1.0 and back["z"][0] == 1
    assert isinstance(back["model"], Omitted) and back["model"].type == "Linear"
    assert json_codec.omitted(back) == ["data['model']", "data['z'][1]", "data['spectrum']",
                                        "data['t']", "data['s']"]
    text = caplog.text
    for where in ("data['model'] (Linear)", "data['z'][1] (complex)", "data['spectrum']",
                  "data['t'] (Tensor)", "data['s'] (set)"):
        assert where in text


def test_a_container_holding_itself_is_marked_not_followed(caplog):
    loop: list = [1.0]
    loop.append(loop)
    shared = [2.0]
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        back = _roundtrip({"loop": loop, "twice": (shared, shared)})
    assert back["loop"][0] == 1.0 and isinstance(back["loop"][1], Omitted)
    assert back["twice"] == ([2.0], [2.0])  # shared, not a cycle: both copies recorded
    assert "data['loop'][1] (list)" in caplog.text and "twice" not in caplog.text


def test_dataclass_instances_come_back_as_instances_of_their_class():
    p = _Point(NAN, np.arange(3.0), "b")
    object.__setattr__(p, "count", 5)
    back = _roundtrip({"runs": [p, _Point(1.0, np.zeros(0))]})["runs"]
    assert type(back[0]) is _Point and (back[0].label, back[0].count) == ("b", 5)
    assert math.isnan(back[0].x) and _same(back[0].curve, p.curve)
    assert type(back[1]) is _Point and back[1].x == 1.0 and back[1].label == "a"
    assert _same(back[1].curve, np.zeros(0))
    # a field that cannot be recorded is marked inside the instance, and found there
    holder = _roundtrip(_Holder([p], other=object()))
    assert type(holder) is _Holder and type(holder.points[0]) is _Point
    assert json_codec.omitted(holder) == ["data.other"]


@pytest.mark.parametrize("type_name", ["os:system", "no_such_module:Thing",
                                       "trainlab.store.json_codec:Nope",
                                       "trainlab.store.json_codec:Omitted"])
def test_a_recorded_class_name_never_imports_or_calls_anything_else(type_name, caplog):
    text = json_codec.dumps(_Point(1.0, np.ones(2)))
    enc = json.loads(text)
    enc["type"] = type_name
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        back = json_codec.loads(json.dumps(enc))
    assert "no_such_module" not in __import__("sys").modules
    if type_name.endswith(":Omitted"):  # a dataclass, but not one with these fields
        assert "cannot be built from the recorded fields" in caplog.text
    else:
        assert "is not an imported dataclass" in caplog.text
    assert set(back) == {"x", "curve", "label", "count"} and back["x"] == 1.0


def test_a_dataclass_whose_fields_changed_comes_back_as_a_dict(caplog):
    enc = json.loads(json_codec.dumps(_Point(1.0, np.ones(2))))
    del enc["fields"]["label"]
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        back = json_codec.loads(json.dumps(enc))
    assert isinstance(back, dict) and "its fields are now" in caplog.text


def test_the_cap_leaves_out_the_largest_entries_and_names_them(caplog):
    data = {"small": [1.0, 2.0], "big": np.arange(4000.0), "medium": np.arange(300.0),
            "label": "x"}
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        text = json_codec.dumps(data, limit_bytes=8192, what="reproduce demo")
    assert len(text.encode()) <= 8192
    back = json_codec.loads(text)
    assert isinstance(back["big"], Omitted) and "over the size limit" in back["big"].reason
    assert _same(back["medium"], data["medium"]) and back["small"] == [1.0, 2.0]
    assert json_codec.omitted(back) == ["data['big']"]
    big = len(json.dumps(json_codec._Encoder().encode(data["big"], ""),
                         separators=(",", ":")))
    assert "reproduce demo: the recorded data is capped at 8192 bytes" in caplog.text
    assert f"data['big'] ({big} bytes)" in caplog.text and "medium" not in caplog.text


def test_over_the_cap_without_entries_to_drop_the_whole_value_is_left_out(caplog):
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        back = json_codec.loads(json_codec.dumps(np.arange(5000.0), limit_bytes=2048))
    assert isinstance(back, Omitted) and "left out: data (" in caplog.text


def test_under_the_cap_nothing_is_left_out_or_warned(caplog):
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        back = json_codec.loads(json_codec.dumps({"a": np.arange(10.0)}, limit_bytes=2048))
    assert json_codec.omitted(back) == [] and caplog.text == ""


def test_bad_cap_and_unknown_tag_are_clear_errors():
    with pytest.raises(ConfigError, match="limit_bytes"):
        json_codec.dumps([1], limit_bytes=10)
    with pytest.raises(ValueError, match="unknown recorded kind 'blob'"):
        json_codec.loads(json.dumps({TAG: "blob"}))
