"""TensorBoard: a live sink for the Monitor and the export of a stored run.

Scalars are written with PyTorch's ``torch.utils.tensorboard.SummaryWriter`` (the TensorBoard
event-file writer that ships with torch; it needs the ``tensorboard`` package), one scalar
per metric and step, tagged with the metric's trainlab name (``loss``, ``grad-norm/total``,
``test/accuracy``, ...), so ``tensorboard --logdir DIR`` groups them by their prefix. The
step is the Monitor's step (updates already applied).

Example::

    mon = Monitor(model, loss_fn=F.cross_entropy, optimizer=opt, tensorboard="tb/run1")
    # or: trainlab run --tensorboard tb/run1
    # or, after the fact: trainlab runs export latest --format tensorboard -o tb/run1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainlab.errors import ConfigError
from trainlab.log import LOGGER


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # torch raises ImportError when tensorboard is missing
        raise ConfigError("TensorBoard output needs the tensorboard package: "
                          "pip install 'trainlab[tensorboard]'") from exc
    return SummaryWriter


class TensorBoardSink:
    """Writes every value the Monitor records to TensorBoard event files in ``log_dir``.

    One directory holds one run (TensorBoard shows each subdirectory of ``--logdir`` as a
    run): give each run its own ``log_dir`` and point ``tensorboard --logdir`` at their
    parent to compare them.

    The event file is opened at the first write. A resumed run (``trainlab run --resume``)
    writes again from its checkpoint's step ``k``; the sink then tells TensorBoard to drop
    the steps ``>= k`` an earlier writer recorded in the same directory, as the run store
    does.

    Args:
        log_dir: the directory of this run's event files (created at the first write).
        flush_secs: the writer flushes to disk at least this often, so a live TensorBoard
            sees the curves while training runs; :meth:`close` flushes the rest.
    """

    def __init__(self, log_dir: str | Path, *, flush_secs: float = 5.0):
        self.log_dir = Path(log_dir)
        self.flush_secs = flush_secs
        self._writer_class = _summary_writer_class()  # fails here if tensorboard is missing
        self._writer: Any = None
        self._closed = False

    def write(self, step: int, values: dict[str, float]) -> None:
        if self._closed:
            raise RuntimeError(f"TensorBoardSink({str(self.log_dir)!r}) is closed")
        if self._writer is None:
            # a run resumed at step k > 0 starts writing at k: purge_step makes TensorBoard
            # drop what an earlier writer recorded at steps >= k (the interrupted tail)
            self._writer = self._writer_class(log_dir=str(self.log_dir),
                                              flush_secs=self.flush_secs,
                                              purge_step=step if step > 0 else None)
        for name, value in values.items():
            self._writer.add_scalar(name, value, global_step=step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (a second call does nothing)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._closed = True

    def __repr__(self) -> str:
        return f"TensorBoardSink({str(self.log_dir)!r})"


def export_run(store, run_id: str, log_dir: str | Path) -> int:
    """Write the metrics of stored run ``run_id`` to TensorBoard event files in ``log_dir``.

    Args:
        store: a :class:`trainlab.store.RunStore`.
        run_id: a run id of that store (resolve names and prefixes with ``store.resolve``).
        log_dir: the directory to write (one run per directory).

    Returns:
        The number of scalars written.
    """
    by_step: dict[int, dict[str, float]] = {}
    for name, (steps, values) in store.metrics(run_id).items():
        for s, v in zip(steps, values):
            by_step.setdefault(int(s), {})[name] = float(v)
    sink = TensorBoardSink(log_dir)
    try:
        for step in sorted(by_step):
            sink.write(step, by_step[step])
    finally:
        sink.close()
    n = sum(len(v) for v in by_step.values())
    LOGGER.info("wrote %d scalars of run %s to %s", n, run_id, log_dir)
    return n
