"""Resumable checkpoints: written with a checksum into the run store, loaded only verified.

A checkpoint is a ``torch.save`` of plain containers (dicts, lists, tuples, numbers,
strings, tensors). It is stored through :meth:`RunStore.write_artifact`, which records the
SHA-256 of its bytes, and read back through :meth:`RunStore.read_artifact`, which refuses
bytes that differ (a flipped bit, a truncated or replaced file). The bytes are then
unpickled with ``torch.load(weights_only=True)``: only tensors and plain containers can be
built, so even a checkpoint forged together with its checksum runs no code.
"""

from __future__ import annotations

import io
import pickle
import secrets
from pathlib import Path
from typing import Any

import torch

from trainlab.errors import TrainlabError
from trainlab.store import RunStore

CHECKPOINT = "checkpoint"


def save_checkpoint(store: RunStore, run_id: str, state: dict[str, Any]) -> Path:
    """Write ``state`` as the run's checkpoint (a new file each time; the previous one is
    removed once the new one is recorded); returns its path."""
    buf = io.BytesIO()
    torch.save(state, buf)
    name = f"checkpoint-{int(state.get('step', 0)):09d}-{secrets.token_hex(3)}.pt"
    return store.write_artifact(run_id, CHECKPOINT, buf.getvalue(), name)


def has_checkpoint(store: RunStore, run_id: str) -> bool:
    return store.artifact(run_id, CHECKPOINT) is not None


def load_checkpoint(store: RunStore, run_id: str) -> dict[str, Any]:
    """The run's checkpoint, verified against its recorded checksum and unpickled with
    ``weights_only=True``; anything else raises :class:`TrainlabError` in one line."""
    data = store.read_artifact(run_id, CHECKPOINT)
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError,
            AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainlabError(f"the checkpoint of run {run_id} cannot be loaded safely "
                            f"(weights_only): {first}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise TrainlabError(f"the checkpoint of run {run_id} is not a trainlab checkpoint")
    return state
