"""The Hessian of a training loss as the curvature probes and analyses use it (the model's mode
kept, one fixed draw of its randomness, double backward with a forward-over-reverse fallback)."""

from __future__ import annotations

import logging
from typing import Any

import torch

from trainlab.curvature.operators import HessianOperator
from trainlab.curvature.operators.hessian import GRAPH_BUDGET_MB

LOG = logging.getLogger("trainlab")


def training_hessian(model: torch.nn.Module, loss_fn: Any, batch: tuple[Any, Any],
                     params: dict[str, torch.Tensor] | None = None, *,
                     run_cache: dict[str, Any] | None = None,
                     graph_budget_mb: float | None = GRAPH_BUDGET_MB) -> HessianOperator:
    """The Hessian operator the curvature probes use (see
    :func:`~trainlab.probes.sharpness.step_hessian`): the model's
    mode kept, one fixed draw of its randomness, double-backward products through a
    retained graph, or forward-over-reverse when double backward fails (a warning on the
    ``trainlab`` logger, once per ``run_cache``).

    Whether double backward works is tried with one zero product (which also builds the
    retained graph); once it has worked for ``model``, ``run_cache`` remembers it and later
    calls skip that trial product (the first real product builds the same graph, so every
    value is unchanged, one backward pass cheaper per measurement) and the operator's
    determinism check (two forward passes, which only raise or pass and change no value:
    it passed for ``model`` when the trial product was made).

    ``graph_budget_mb`` caps the memory of the retained graph (see
    :class:`~trainlab.curvature.operators.HessianOperator`): over it, products are fresh
    double-backward products (bit-identical values), with a warning on the ``trainlab`` logger
    once per ``run_cache`` and the reason in the operator's ``retain_fallback``."""
    cache = {} if run_cache is None else run_cache
    known = cache.get("hessian_double_backward_ok") == id(model)
    op = HessianOperator(model, loss_fn, batch, params, method="double-backward",
                         retain_graph=True, fixed_randomness=True,
                         check_deterministic=not known, graph_budget_mb=graph_budget_mb,
                         run_cache=cache)
    if known:
        return op
    try:
        op.matvec(torch.zeros(op.dim, dtype=op.dtype, device=op.device))
        cache["hessian_double_backward_ok"] = id(model)
    except RuntimeError as exc:
        if not cache.get("hessian_fallback_logged"):
            cache["hessian_fallback_logged"] = True
            LOG.warning("Hessian-vector products: double backward failed on this model (%s); "
                        "using forward-over-reverse (torch.func) instead.",
                        (str(exc).strip().splitlines() or [type(exc).__name__])[0])
        op = HessianOperator(model, loss_fn, batch, params, method="forward-over-reverse",
                             check_deterministic=False, fixed_randomness=True)
    return op
