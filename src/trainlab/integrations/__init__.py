"""Bridges from trainlab to the tools people already train with.

Each module here connects one outside library and imports it only when the module itself
is imported, so ``import trainlab`` works without any of them (each is an optional extra
in ``pyproject.toml``):

- :mod:`trainlab.integrations.tensorboard`: :class:`TensorBoardSink`, every recorded metric
  written to TensorBoard event files as it is recorded (``Monitor(tensorboard=DIR)``,
  ``trainlab run --tensorboard DIR``), and :func:`export_run` for a stored run.
- :mod:`trainlab.integrations.lightning`: ``TrainlabCallback``, a Monitor on any
  ``LightningModule`` trained by ``lightning.Trainer``.
- :mod:`trainlab.integrations.huggingface`: ``TrainlabCallback``, a Monitor on a model
  trained by ``transformers.Trainer``.

A *sink* is anything with ``write(step, values)`` (``values``: ``{metric name: float}``,
everything the Monitor recorded at ``step``) and ``close()``; the Monitor calls ``write``
once per recorded step and ``close`` in :meth:`~trainlab.train.Monitor.finish`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Sink(Protocol):
    """Where the Monitor sends each step's recorded values, as they are recorded."""

    def write(self, step: int, values: dict[str, float]) -> None: ...

    def close(self) -> None: ...


__all__ = ["Sink"]
