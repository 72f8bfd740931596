"""The configuration of a training run, a dataclass with YAML/JSON round trip."""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainlab.errors import ConfigError, check_range

DTYPES = ("float32", "float64")
SECTIONS = ("task", "model", "init", "optim", "schedule")


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
        probes: comma-separated probe and preset names (``name@every`` sets a cadence).
        probe_params: ``{probe name: {kwarg: value}}``.
        every: default probe cadence in steps.
        seed: fixes initialization, batch order and stochastic probes.
        dtype: ``float32`` or ``float64``.
        device: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto`` (:mod:`trainlab.train.device`);
            checked for its form here, for its presence when the run starts.
        z_loss: coefficient of the output-logit z-loss added to a classification loss
            (row 98; the paper uses 1e-4; 0 turns it off).
        checkpoint_every: write a resumable checkpoint every this many steps (0: only on
            interruption).
        name: a label for the run (defaults to its id).
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
    name: str = ""

    def validate(self) -> RunConfig:
        """Check every name against its registry and every number against its range."""
        from trainlab.registry import lookup

        for section in SECTIONS:
            kind = {"optim": "optimizer"}.get(section, section)
            lookup(kind).entry(getattr(self, section))
            if not isinstance(getattr(self, f"{section}_params"), dict):
                raise ConfigError(f"{section}_params must be a mapping, got "
                                  f"{getattr(self, f'{section}_params')!r}")
        check_range("lr", self.lr, low=0.0, owner="RunConfig")
        check_range("steps", self.steps, low=1, owner="RunConfig")
        check_range("batch_size", self.batch_size, low=0, owner="RunConfig")
        check_range("every", self.every, low=1, owner="RunConfig")
        check_range("checkpoint_every", self.checkpoint_every, low=0, owner="RunConfig")
        check_range("z_loss", self.z_loss, low=0.0, owner="RunConfig")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        from trainlab.train.device import check_device

        check_device(self.device)
        from trainlab.probes import expand

        expand(self.probes)
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
                close = difflib.get_close_matches(key, valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"Unknown config key {key!r}.{hint} Valid keys: "
                                  f"{', '.join(valid)}.")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        clean = {}
        for key, value in data.items():
            t = str(types[key])
            try:
                if t == "int" and not isinstance(value, bool):
                    value = int(value) if float(value) == int(float(value)) else _bad(key, value)
                elif t == "float":
                    value = float(value)
            except (TypeError, ValueError):
                _bad(key, value)
            clean[key] = value
        return cls(**clean)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"malformed config file {path}: {exc}") from None
        return cls.from_dict(data or {})

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
        defaults = RunConfig()
        out = dict(changes)
        for section in SECTIONS:
            key = f"{section}_params"
            if (section in changes and changes[section] != getattr(self, section)
                    and key not in changes and getattr(self, key) == getattr(defaults, key)):
                out[key] = {}
        return RunConfig.from_dict({**self.to_dict(), **out})


def _bad(key: str, value: Any) -> Any:
    raise ConfigError(f"config key {key!r} must be a number of the right kind, got {value!r}")


def parse_value(text: str) -> Any:
    """A command-line value: YAML scalars and lists (``3``, ``0.1``, ``true``, ``[1, 2]``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(config: RunConfig, assignments: list[str]) -> RunConfig:
    """Apply ``key=value`` and ``section.key=value`` assignments (``model.width=256`` sets
    ``model_params['width']``; ``probe.sharpness.max_iter=50`` sets a probe's argument)."""
    data = config.to_dict()
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"expected key=value, got {item!r}")
        value, parts = parse_value(raw), key.strip().split(".")
        if len(parts) == 1:
            data = RunConfig.from_dict(data).switch(**{parts[0]: value}).to_dict()
        elif parts[0] in SECTIONS and len(parts) == 2:
            data[f"{parts[0]}_params"] = {**data[f"{parts[0]}_params"], parts[1]: value}
        elif parts[0] == "probe" and len(parts) == 3:
            probe = dict(data["probe_params"].get(parts[1], {}), **{parts[2]: value})
            data["probe_params"] = {**data["probe_params"], parts[1]: probe}
        else:
            raise ConfigError(f"cannot set {key!r}: use KEY, SECTION.KEY (sections: "
                              f"{', '.join(SECTIONS)}) or probe.NAME.KEY")
    return RunConfig.from_dict(data)
