"""Data-parallel training (``torch.distributed``, DDP): what the Monitor needs to record the
numbers of the *global* batch, and how ``trainlab run --nproc N`` starts its processes.

Under :class:`~torch.nn.parallel.DistributedDataParallel` each of ``W`` processes (ranks)
computes the loss of its own shard of the global batch and DDP averages the gradients, so
after ``backward`` every rank holds the mean gradient of the global batch (when the shards
have equal sizes and the loss is a mean over examples). The Monitor then records
(:class:`~trainlab.train.Monitor`):

- the loss: the example-weighted mean of the ranks' losses, :math:`\\sum_r n_r L_r /
  \\sum_r n_r`, which is the loss of the global batch;
- probes that read only parameters, gradients (already all-reduced), optimizer state or the
  task (``ddp="replicated"`` in the probe's registry entry): unchanged;
- curvature probes (``ddp="reduced"``): every Hessian-vector product of
  :func:`~trainlab.probes.sharpness.step_hessian` is the local product averaged over the ranks,
  weighted by their shares of the examples (:class:`AveragedOperator`), which is the product
  with the Hessian of the global batch's mean loss; per-sample statistics (``grad-noise``)
  are computed on each rank and summed (sums) or gathered (per-sample norms) across ranks;
- every other probe (``ddp="global-batch"``, the default): measured on the global batch,
  gathered from the ranks in rank order (:meth:`Distributed.gather_batch`), redundantly on
  every rank (exact, not faster);
- probes declared ``ddp="unsupported"``: skipped, with the reason in the run record and a
  warning on the ``trainlab`` logger.

Only rank 0 writes the run store, the sinks (TensorBoard) and the report. Every rank runs the
same probes in the same order with the same generator, so the collectives match.

What cannot be made equal to one process, and is therefore reported: shards of unequal size
(DDP's gradient is then the mean of the ranks' means, not the global mean: a warning), and
BatchNorm in training mode (each rank normalizes with its own shard's statistics: a
warning; ``torch.nn.SyncBatchNorm`` removes the difference).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from trainlab.curvature.operators._linear import LinearOperator
from trainlab.errors import ConfigError

LOG = logging.getLogger("trainlab")
POLICIES = ("replicated", "reduced", "global-batch", "unsupported")
"""How a probe runs under DDP (its registry entry's ``ddp`` flag; see the module doc)."""


@dataclass(frozen=True)
class Distributed:
    """The process group a Monitor measures across: this process's ``rank`` of
    ``world_size`` (``group``: None for the default group)."""

    rank: int
    world_size: int
    group: Any = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the store, the sinks and the report."""
        return self.rank == 0

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the ranks (in place; returned)."""
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        return tensor

    def all_gather_cat(self, tensor: torch.Tensor) -> torch.Tensor:
        """The ranks' tensors concatenated along dim 0 in rank order (sizes may differ)."""
        sizes = [None] * self.world_size
        dist.all_gather_object(sizes, int(tensor.shape[0]), group=self.group)
        big = max(sizes)
        padded = torch.zeros((big, *tensor.shape[1:]), dtype=tensor.dtype,
                             device=tensor.device)
        padded[:tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded.contiguous(), group=self.group)
        return torch.cat([p[:s] for p, s in zip(parts, sizes)])

    def gather_batch(self, batch: Any) -> Any:
        """The global batch: every tensor of ``batch`` (nested tuples, lists and dicts of
        tensors) concatenated over the ranks along dim 0, in rank order."""
        if isinstance(batch, torch.Tensor):
            return self.all_gather_cat(batch)
        if isinstance(batch, (tuple, list)):
            return type(batch)(self.gather_batch(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self.gather_batch(v) for k, v in batch.items()}
        if batch is None:
            return None
        raise ConfigError(f"under DDP the monitor gathers the batch across ranks and needs "
                          f"tensors (in tuples, lists or dicts); got {type(batch).__name__}")

    def sizes(self, n: int) -> list[int]:
        """Every rank's ``n`` (e.g. its number of examples), in rank order."""
        return [int(v) for v in self.objects(int(n))]

    def objects(self, obj: Any) -> list[Any]:
        """Every rank's picklable ``obj``, in rank order."""
        out = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def from_main(self, obj: Any) -> Any:
        """Rank 0's picklable ``obj`` on every rank (the other ranks' ``obj`` is ignored)."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, group=self.group, group_src=0)
        return box[0]

    @property
    def device(self) -> torch.device:
        """Where this group's collectives take tensors: the current CUDA device under nccl,
        else the CPU."""
        if dist.get_backend(self.group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def any_of(self, flags: list[bool]) -> list[bool]:
        """Each flag OR-ed over the ranks (one all-reduce of ``len(flags)`` numbers)."""
        t = torch.tensor([float(f) for f in flags], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return [bool(v) for v in t.tolist()]


def current(group: Any = None) -> Distributed | None:
    """The process group this process trains in, or None outside ``torch.distributed`` (or
    in a group of one process, where nothing differs from a single process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    world = dist.get_world_size(group)
    if world <= 1:
        return None
    return Distributed(dist.get_rank(group), world, group)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a :class:`~torch.nn.parallel.DistributedDataParallel` wrapper (the
    probes' own forward passes must not trigger DDP's gradient synchronization), else
    ``model``."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class AveragedOperator(LinearOperator):
    r"""A curvature operator whose products are averaged over the ranks:
    :math:`\sum_r w_r H_r v` with :math:`w_r = n_r / N` (``weight``, this rank's share of
    the :math:`N` examples). With :math:`H_r` the Hessian of the mean loss of rank ``r``'s
    :math:`n_r` examples this is the Hessian of the global batch's mean loss times ``v``,
    for shards of any sizes. Every rank must call it the same number of times (the probes
    do: the same solver from the same start on the same averaged products). Other
    attributes are those of the wrapped operator."""

    def __init__(self, op: LinearOperator, dist_: Distributed, weight: float):
        self.op, self.dist, self.weight = op, dist_, weight
        self.dim, self.dtype, self.device = op.dim, op.dtype, op.device

    def matmat(self, mat: torch.Tensor) -> torch.Tensor:
        return self.dist.all_reduce_sum(self.op.matmat(mat).mul(self.weight))

    def matvec(self, vec: torch.Tensor) -> torch.Tensor:
        return self.dist.all_reduce_sum(self.op.matvec(vec).mul(self.weight))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.op, name)


def shard(idx: torch.Tensor, dist_: Distributed) -> torch.Tensor:
    """Rank ``dist_.rank``'s contiguous share of the global batch indices ``idx``
    (``len(idx)`` must divide by the world size, so that DDP's mean of the ranks' mean
    gradients is the global batch's mean gradient)."""
    n = len(idx)
    if n % dist_.world_size:
        raise ConfigError(f"batch_size {n} does not divide among {dist_.world_size} processes "
                          f"(--nproc); choose a multiple of {dist_.world_size}")
    b = n // dist_.world_size
    return idx[dist_.rank * b:(dist_.rank + 1) * b]


# ---- starting the processes -------------------------------------------------------------
ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """True when this process was started by ``torchrun`` (or another launcher setting
    ``RANK`` and ``WORLD_SIZE``)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init_from_env(backend: str | None = None) -> Distributed | None:
    """Join the process group described by the environment (``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``; ``LOCAL_RANK`` picks the CUDA device), as ``torchrun``
    sets it. ``backend``: ``nccl`` when CUDA is there, else ``gloo``."""
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return current()


def free_port() -> int:
    """A TCP port free on this host now (for ``MASTER_PORT`` of a local launch)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, fn: Callable[..., Any], nproc: int, port: int, backend: str,
            args: tuple[Any, ...]) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(nproc), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(max(1, torch.get_num_threads() // nproc))
    if backend == "nccl":  # one GPU per process
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, rank=rank, world_size=nproc)
    try:
        fn(*args)
    finally:
        # a DistributedDataParallel still alive (kept by a reference cycle, e.g. a Monitor's
        # hooks) when the group is destroyed hangs that rank on torch 2.6: collect it first
        gc.collect()
        dist.destroy_process_group()


START_METHOD = "spawn"
"""How :func:`spawn` starts processes: ``"spawn"`` (fresh interpreters: safe with CUDA and
threads) or ``"fork"`` (copies of this process: starts in a fraction of the time, CPU only;
the tests use it)."""


def spawn(fn: Callable[..., Any], nproc: int, *args: Any, backend: str = "gloo") -> None:
    """Run ``fn(*args)`` in ``nproc`` new processes on this host, each in one process group
    (``backend``, default ``gloo``: CPU; ``nccl``: process ``r`` on ``cuda:r``) with the
    ``torchrun`` environment variables set,
    started by :data:`START_METHOD`. ``fn`` must be importable (a module-level function).
    Raises when a process fails."""
    from trainlab.errors import check_range

    check_range("nproc", nproc, low=1, owner="trainlab run")
    import torch.multiprocessing as mp

    mp.start_processes(_worker, args=(fn, nproc, free_port(), backend, args), nprocs=nproc,
                       join=True, start_method=START_METHOD)
