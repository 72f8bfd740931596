"""The configuration of a training run, a dataclass with YAML/JSON round trip.

A :class:`RunConfig` is checked once, when it is constructed (``__post_init__``): every
field's type (a boolean is not a number), every number's range, every registry name, the
probe spec (parsed once into :attr:`RunConfig.probe_list`, a tuple of :class:`ProbeSpec`) and
every probe's parameters. Files, CLI flags and ``-p`` assignments all end in that one
constructor, so they fail with the same one-line :class:`~trainlab.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainlab.errors import ConfigError, check_choice, check_range

DTYPES = ("float32", "float64")
SECTIONS = ("task", "model", "init", "optim", "schedule")
KINDS = {"task": "task", "model": "model", "init": "init", "optim": "optimizer",
         "schedule": "schedule"}
_STRINGS = ("task", "model", "init", "optim", "schedule", "probes", "dtype", "name")
# field -> (low, high) of the integer fields; seeds are also offset (+1, +7919) for generators
_INTS = {"steps": (1, 2**62), "batch_size": (0, 2**62), "every": (1, 2**62),
         "seed": (0, 2**62), "checkpoint_every": (0, 2**62)}
_FLOATS = ("lr", "z_loss", "checkpoint_seconds", "flush_seconds")
_PARAMS = tuple(f"{s}_params" for s in SECTIONS) + ("probe_params",)
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a run: its registry name and its own cadence (None: the run's ``every``)."""

    name: str
    every: int | None = None


@dataclass
class RunConfig:
    """Everything that decides a run. The same config and seed give the same numbers.

    Attributes:
        task, model, init, optim, schedule: registry names (``trainlab list ...``).
        task_params ... schedule_params: keyword arguments of each (the paper's defaults
            apply to whatever is left out). ``schedule_params`` never include the total steps.
        lr: peak learning rate.
        steps: number of optimizer updates.
        batch_size: mini-batch size; 0 means full batch (gradient descent).
        probes: comma-separated probe and preset names (``name@every`` sets a cadence; a
            probe named twice, e.g. ``standard,sharpness@10``, keeps its first place and the
            last cadence given).
        probe_params: ``{probe name: {kwarg: value}}``, for probes of this run only.
        every: default probe cadence in steps.
        seed: fixes initialization, batch order and stochastic probes (0 to 2**62).
        dtype: ``float32`` or ``float64``.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (:mod:`trainlab.train.device`);
            checked for its form here, for its presence when the run starts.
        z_loss: coefficient of the output-logit z-loss added to a classification loss
            (row 98; the paper uses 1e-4; 0 turns it off).
        checkpoint_every: write a resumable checkpoint every this many steps (0: none by
            step count).
        checkpoint_seconds: also write one when this many seconds have passed since the
            last (default 300; 0 turns it off). A kill loses at most this much training.
        flush_seconds: write the buffered metrics to the store at least this often
            (default 5; 0: every step).
        name: a label for the run (defaults to its id).

    Raises:
        ConfigError: at construction, for a value of the wrong type or out of range, or
            parameters of a probe that is not in the run (one line naming the field).
        UnknownNameError: for a name that is not in its registry (lists the valid ones).
    """

    task: str = "mnist1d"
    task_params: dict[str, Any] = field(default_factory=dict)
    model: str = "mlp"
    model_params: dict[str, Any] = field(default_factory=dict)
    init: str = "orthogonal"
    init_params: dict[str, Any] = field(default_factory=dict)
    optim: str = "adamw"
    lr: float = 3e-3
    optim_params: dict[str, Any] = field(default_factory=dict)
    schedule: str = "d2z"
    schedule_params: dict[str, Any] = field(default_factory=lambda: {"warmup": 0.05})
    steps: int = 3000
    batch_size: int = 128
    probes: str = "standard"
    probe_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    every: int = 50
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    z_loss: float = 0.0
    checkpoint_every: int = 0
    checkpoint_seconds: float = 300.0
    flush_seconds: float = 5.0
    name: str = ""

    def __post_init__(self) -> None:
        from trainlab.registry import lookup

        for key in _STRINGS:
            if not isinstance(getattr(self, key), str):
                _wrong(key, getattr(self, key), "a string")
        for key, (low, high) in _INTS.items():
            setattr(self, key, _number(key, getattr(self, key), integral=True))
            check_range(key, getattr(self, key), low=low, high=high, owner="RunConfig")
        for key in _FLOATS:
            setattr(self, key, _number(key, getattr(self, key), integral=False))
            check_range(key, getattr(self, key), low=0.0, owner="RunConfig")
        for key in _PARAMS:
            _check_params(key, getattr(self, key))
        for section in SECTIONS:
            lookup(KINDS[section]).entry(getattr(self, section))
        check_choice("dtype", self.dtype, DTYPES, owner="RunConfig")
        self.probe_list = parse_probes(self.probes)
        _check_probe_params(self.probe_params, self.probe_list)
        from trainlab.train.device import check_device

        check_device(self.device)

    def validate(self) -> RunConfig:
        """Check the config again (after fields were assigned); returns it."""
        self.__post_init__()
        return self

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a mapping; unknown keys raise with the closest valid key."""
        if not isinstance(data, dict):
            raise ConfigError(f"a run config must be a mapping, got {type(data).__name__}")
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"Unknown config key {key!r}.{hint} Valid keys: "
                                  f"{', '.join(valid)}.")
        return cls(**data)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) file."""
        return cls.from_dict(read_config_file(path))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        text = (json.dumps(self.to_dict(), indent=2) if path.suffix == ".json"
                else self.to_yaml())
        path.write_text(text, encoding="utf-8")
        return path

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def switch(self, **changes: Any) -> RunConfig:
        """Like :meth:`replace`, but choosing another task/model/init/optim/schedule drops
        that section's parameters when they are still the defaults (the default D2Z warmup
        means nothing to another schedule); explicitly set parameters are kept."""
        return build_config(self.to_dict(), changes)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML (``.yaml``/``.yml``) or JSON (``.json``) file, unchecked
    (:class:`RunConfig` checks it); a file that cannot be read or parsed, or that holds
    something other than a mapping, raises :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"malformed config file {path}: {first}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"a run config must be a mapping, got {type(data).__name__}")
    return data


def _wrong(key: str, value: Any, what: str) -> None:
    raise ConfigError(f"The {key!r} parameter of RunConfig must be {what}. "
                      f"Got {value!r} ({type(value).__name__}) instead.")


def _number(key: str, value: Any, *, integral: bool) -> int | float:
    """``value`` as an int (``integral``) or float: numbers and numeric strings (YAML 1.1
    reads ``1e-3`` as a string); never a boolean, NaN or infinity."""
    what = "an integer" if integral else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        _wrong(key, value, what)
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value.strip()):
            _wrong(key, value, what)
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        _wrong(key, value, f"{what} (finite)")
    if integral:
        if isinstance(value, float) and not value.is_integer():
            _wrong(key, value, what)
        return int(value)
    return float(value)


def _check_params(key: str, params: Any) -> None:
    """A ``*_params`` mapping: string keys, plain values (numbers, strings, booleans, None,
    lists and mappings of them), no NaN."""
    if not isinstance(params, dict):
        _wrong(key, params, "a mapping")

    def walk(where: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ConfigError(f"{where}: keys must be strings, got {k!r}")
                walk(f"{where}[{k!r}]", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{where}[{i}]", v)
        elif isinstance(value, float) and value != value:
            raise ConfigError(f"{where} is NaN; give a number")
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"{where} must be a number, string, boolean, list or mapping; "
                              f"got {value!r} ({type(value).__name__})")

    walk(key, params)
    if key == "probe_params":
        for name, kwargs in params.items():
            if not isinstance(kwargs, dict):
                raise ConfigError(f"probe_params[{name!r}] must be a mapping of the probe's "
                                  f"parameters, got {kwargs!r}")


def parse_probes(spec: str) -> tuple[ProbeSpec, ...]:
    """The probe spec (names, presets, ``name@every``) as a typed list, each probe once
    (:func:`trainlab.probes.parse_spec`)."""
    from trainlab.probes import parse_spec

    return tuple(ProbeSpec(n, e) for n, e in parse_spec(spec))


def _check_probe_params(params: dict[str, dict[str, Any]], probes: tuple[ProbeSpec, ...]
                        ) -> None:
    """Each ``probe_params`` entry names a probe of the run and parameters it accepts."""
    from trainlab.probes import PROBES

    names = [p.name for p in probes]
    for name, kwargs in params.items():
        if name not in names:
            raise ConfigError(f"probe_params has parameters for {name!r}, which is not a probe "
                              f"of this run (probes: {', '.join(names) or 'none'})")
        sig = inspect.signature(PROBES.get(name))
        if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            continue
        accepted = [p for p in sig.parameters if p != "every"]
        for key in kwargs:
            if key not in accepted:
                hint = f" (a cadence is set as {name}@N in probes)" if key == "every" else ""
                raise ConfigError(f"probe {name!r} has no parameter {key!r}{hint}; its "
                                  f"parameters: {', '.join(accepted) or 'none'}")


def _defaults() -> dict[str, Any]:
    """The default value of every field, without constructing (and checking) a config."""
    return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
            else f.default for f in dataclasses.fields(RunConfig)}


def _switched(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``changes``; a section switched to another name loses its parameters
    when they are still the defaults."""
    defaults = _defaults()
    out = {**data, **changes}
    for section in SECTIONS:
        key = f"{section}_params"
        if (section in changes and changes[section] != data.get(section)
                and key not in changes and data.get(key) == defaults[key]):
            out[key] = {}
    return out


def parse_value(text: str) -> Any:
    """A command-line value: YAML scalars and lists (``3``, ``0.1``, ``true``, ``[1, 2]``);
    numbers YAML 1.1 leaves as strings (``1e-3``, ``nan``) become floats."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        s = value.strip()
        if _NUMBER.fullmatch(s) or s.lower() in ("nan", "inf", "+inf", "-inf"):
            return float(s)
    return value


def apply_overrides(config: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``key=value`` and ``section.key=value`` assignments (``model.width=256`` sets
    ``model_params['width']``; ``probe.sharpness.max_iter=50`` sets a probe's argument)."""
    return build_config(config.to_dict(), assignments=assignments)


def build_config(base: dict[str, Any] | None = None, flags: dict[str, Any] | None = None,
                 assignments: list[str] = ()) -> RunConfig:
    """The one way a config is assembled from parts: the defaults < ``base`` (a file's
    mapping) < ``flags`` (field values; a switched section drops default parameters) <
    ``assignments`` (``KEY=VALUE``, ``SECTION.KEY=VALUE``, ``probe.NAME.KEY=VALUE``). The
    mapping is checked once, by the :class:`RunConfig` constructor."""
    data = _switched(_switched(_defaults(), base or {}), flags or {})
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"expected key=value, got {item!r}")
        value, parts = parse_value(raw), key.strip().split(".")
        if len(parts) == 1:
            data = _switched(data, {parts[0]: value})
        elif parts[0] in SECTIONS and len(parts) == 2 and parts[1]:
            params = data[f"{parts[0]}_params"]
            if not isinstance(params, dict):
                _wrong(f"{parts[0]}_params", params, "a mapping")
            data[f"{parts[0]}_params"] = {**params, parts[1]: value}
        elif parts[0] == "probe" and len(parts) == 3 and parts[1] and parts[2]:
            probes = data["probe_params"]
            if not isinstance(probes, dict) or not isinstance(probes.get(parts[1], {}), dict):
                _wrong("probe_params", probes, "a mapping of mappings")
            probe = dict(probes.get(parts[1], {}), **{parts[2]: value})
            data["probe_params"] = {**probes, parts[1]: probe}
        else:
            raise ConfigError(f"cannot set {key!r}: use KEY, SECTION.KEY (sections: "
                              f"{', '.join(SECTIONS)}) or probe.NAME.KEY")
    return RunConfig.from_dict(data)
