"""Which device a run trains on: ``cpu``, ``cuda``, ``cuda:N``, ``mps`` or ``auto``.

A config names its device as a string so that it can be written, validated on a machine
without the device (a sweep's driver) and resolved where the run trains. The model is built
and initialized on the CPU (the same weights whatever the device, from the seed's CPU
generators) and then moved with the task's data to the device.
"""

from __future__ import annotations

import re

import torch

from trainlab.errors import ConfigError
from trainlab.log import LOGGER

DEVICES = ("cpu", "cuda", "cuda:N", "mps", "auto")
_PATTERN = re.compile(r"^(cpu|cuda|cuda:\d+|mps|auto)$")


def available_devices() -> list[str]:
    """The device names this machine can train on (``cuda:N`` listed per GPU)."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        out.append("mps")
    return out


def check_device(spec: str) -> str:
    """``spec`` if it is a device name of the right form (not necessarily present here)."""
    if not isinstance(spec, str) or not _PATTERN.match(spec):
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {spec!r} "
                          f"(available here: {', '.join(available_devices())})")
    return spec


def resolve_device(spec: str) -> torch.device:
    """The ``torch.device`` of ``spec`` on this machine. ``auto`` picks CUDA, then MPS, then
    the CPU (logged on the ``trainlab`` logger); a device that is not present raises a
    :class:`~trainlab.errors.ConfigError` naming the available ones."""
    check_device(spec)
    available = available_devices()
    if spec == "auto":
        spec = next((d for d in ("cuda", "mps") if d in available), "cpu")
        LOGGER.info("device auto: training on %s (available: %s)", spec, ", ".join(available))
    elif spec not in available:
        raise ConfigError(f"device {spec!r} is not available here (available: "
                          f"{', '.join(available)})")
    return torch.device(spec)
