"""A reader for PDEBench's HDF5 files, so PDE runs can be evaluated on PDEBench data.

PDEBench ("PDEBench: An Extensive Benchmark for Scientific Machine Learning", Takamoto et
al., NeurIPS 2022 Datasets and Benchmarks; papers.md row 80) ships its data in three HDF5
layouts, all read here into one array ``u`` of shape ``(samples, times, *space, channels)``:

* ``"tensor"``: a dataset ``tensor`` of shape ``(samples, times, *space)`` (one channel;
  1D advection, Burgers, reaction-diffusion) with ``x-coordinate`` (``y-``, ``z-``) and
  ``t-coordinate`` datasets. Darcy flow stores ``tensor`` as ``(samples, 1, x, y)`` (the
  steady solution, one "time") and the coefficient as ``nu``.
* ``"fields"``: one dataset per variable, each ``(samples, times, *space)`` (compressible
  Navier-Stokes: ``density``, ``pressure``, ``Vx``, ``Vy``, ``Vz``), stacked as channels in
  that order, with the same coordinate datasets.
* ``"groups"``: one group per sample (``"0000"``, ``"0001"``, ...) holding ``data`` of shape
  ``(times, *space, channels)`` and a ``grid`` group with ``x`` (``y``) and ``t``
  (2D diffusion-reaction, shallow water, 1D diffusion-sorption).

PDEBench's ``t-coordinate`` may hold one more entry than there are stored times (the end of
the last interval); it is cut to the number of times, with a note in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trainlab.errors import ConfigError

log = logging.getLogger("trainlab")
LAYOUTS = ("tensor", "fields", "groups")
FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")
SPACE = ("x", "y", "z")


@dataclass(frozen=True)
class PDEBenchData:
    """Data read from a PDEBench file.

    Attributes:
        u: ``(samples, times, *space, channels)``, float64.
        coords: ``{"t": (times,), "x": (n_x,), ...}`` (those present in the file).
        channels: the channel names (``("u",)`` for single-channel files).
        layout: which of :data:`LAYOUTS` the file used.
        extra: other per-sample arrays (Darcy's ``nu``), by name.
    """

    u: torch.Tensor
    coords: dict[str, torch.Tensor]
    channels: tuple[str, ...]
    layout: str
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def _coords(f, times: int, prefix: str = "", suffix: str = "-coordinate"
            ) -> dict[str, torch.Tensor]:
    out = {}
    for name in ("t", *SPACE):
        key = f"{prefix}{name}{suffix}"
        if key in f:
            out[name] = torch.as_tensor(np.asarray(f[key][()], dtype=np.float64)).reshape(-1)
    if "t" in out and len(out["t"]) == times + 1:
        log.info("pdebench: t-coordinate has %d entries for %d times; using the first %d",
                 times + 1, times, times)
        out["t"] = out["t"][:times]
    return out


def read_pdebench(path: str | Path, samples: slice | None = None) -> PDEBenchData:
    """Read a PDEBench HDF5 file (any of :data:`LAYOUTS`), optionally only ``samples``.

    Deviations from the paper: a reader only (no PDEBench baselines or metrics); the three layouts
    are those listed above, read from PDEBench's files as described there, and files that match none
    of them are rejected.

    Raises:
        ConfigError: the file is missing, is not HDF5, or matches none of the layouts (the
            message names them).
    """
    import h5py

    path = Path(path)
    sel = samples if samples is not None else slice(None)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read PDEBench file {path}: {exc}") from None
    with f:
        keys = set(f.keys())
        if "tensor" in keys:
            u = np.asarray(f["tensor"][sel], dtype=np.float64)[..., None]
            extra = {k: torch.as_tensor(np.asarray(f[k][sel], dtype=np.float64))
                     for k in ("nu",) if k in keys}
            return PDEBenchData(torch.as_tensor(u), _coords(f, u.shape[1]), ("u",), "tensor",
                                extra)
        present = [k for k in FIELDS if k in keys]
        if present:
            u = np.stack([np.asarray(f[k][sel], dtype=np.float64) for k in present], -1)
            return PDEBenchData(torch.as_tensor(u), _coords(f, u.shape[1]), tuple(present),
                                "fields")
        groups = sorted(k for k in keys if isinstance(f[k], h5py.Group) and "data" in f[k])
        if groups:
            chosen = groups[sel]
            u = np.stack([np.asarray(f[g]["data"][()], dtype=np.float64) for g in chosen])
            first = f[chosen[0]]
            coords = _coords(first["grid"], u.shape[1], suffix="") if "grid" in first else {}
            channels = tuple(f"u{i}" for i in range(u.shape[-1]))
            return PDEBenchData(torch.as_tensor(u), coords, channels, "groups")
    raise ConfigError(f"{path} matches no PDEBench layout; expected one of {LAYOUTS}: a "
                      f"'tensor' dataset, per-variable datasets {FIELDS}, or per-sample groups "
                      "with 'data'")


def _register() -> None:
    from trainlab.analyses import ANALYSES

    ANALYSES.register("pdebench-reader", read_pdebench, papers=(80,),
                      summary="read PDEBench HDF5 data (tensor, per-field or per-sample "
                              "layouts) for evaluation")


_register()
