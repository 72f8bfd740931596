"""The closure of :mod:`trainlab.optim.closure` for a model, loss and batch, with curvature
products (from :mod:`trainlab.curvature`'s operators), plus the few operations every
multi-pass method performs on closures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from trainlab.curvature import CurvatureOperator, GGNOperator, HessianOperator
from trainlab.errors import ConfigError

Tensors = list[torch.Tensor]


class LossClosure:
    """The contract's closure for ``loss_fn(model(inputs), targets)``, with ``hvp``/``ggn_vp``.

    ``params`` are the tensors the optimizer updates (default: every parameter of the model
    that requires grad, in ``model.parameters()`` order); the curvature products take and
    return one tensor per entry of ``params``, at their current values. The model's mode and
    buffers are left as they are.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
                 inputs: Any, targets: Any, params: Sequence[torch.Tensor] | None = None):
        self.model, self.loss_fn, self.inputs, self.targets = model, loss_fn, inputs, targets
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = list(params) if params is not None else [p for _, p in named]
        ids = {id(p): n for n, p in named}
        missing = [i for i, p in enumerate(self.params) if id(p) not in ids]
        if missing:
            raise ConfigError(f"LossClosure: params at positions {missing} are not trainable "
                              "parameters of the model")
        self._names = [ids[id(p)] for p in self.params]

    def __call__(self) -> torch.Tensor:
        for p in self.params:
            p.grad = None
        with torch.enable_grad():
            loss = self.loss_fn(self.model(self.inputs), self.targets)
            loss.backward()
        return loss.detach()

    def operator(self, kind: str = "hessian") -> CurvatureOperator:
        """The batch's ``"hessian"`` or ``"ggn"`` as a :mod:`trainlab.curvature` operator on
        flat vectors (``params`` order), at the parameters' current values (the operator
        reads the live tensors, so build it after any perturbation)."""
        args = (self.model, self.loss_fn, (self.inputs, self.targets),
                dict(zip(self._names, self.params)))
        if kind == "hessian":  # a fresh operator per call: no per-call double-backward trial
            return HessianOperator(*args, method="forward-over-reverse",
                                   check_deterministic=False)
        return {"ggn": GGNOperator}[kind](*args, check_deterministic=False)

    def _apply(self, kind: str, vectors: Sequence[torch.Tensor]) -> Tensors:
        if len(vectors) != len(self.params):
            raise ConfigError(f"LossClosure: expected {len(self.params)} tensors, got "
                              f"{len(vectors)}")
        flat = torch.cat([v.reshape(-1) for v in vectors])
        out = self.operator(kind).matvec(flat)
        return [c.view_as(p) for c, p in zip(torch.split(out, [p.numel() for p in self.params]),
                                             self.params)]

    def hvp(self, vectors: Sequence[torch.Tensor]) -> Tensors:
        """Hessian of the batch loss times ``vectors`` (one tensor per parameter)."""
        return self._apply("hessian", vectors)

    def ggn_vp(self, vectors: Sequence[torch.Tensor]) -> Tensors:
        """Generalized Gauss-Newton (the Fisher for cross-entropy and squared error) times
        ``vectors``."""
        return self._apply("ggn", vectors)


def make_closure(model: nn.Module, loss_fn: Callable[[torch.Tensor, Any], torch.Tensor],
                 inputs: Any, targets: Any, params: Sequence[torch.Tensor] | None = None
                 ) -> LossClosure:
    """The contract's closure for one batch, with exact ``hvp`` and ``ggn_vp``."""
    return LossClosure(model, loss_fn, inputs, targets, params)


def evaluate(closure: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]
             ) -> tuple[torch.Tensor, Tensors]:
    """Call ``closure`` at the current parameters; return the loss and a copy of each gradient
    (zeros where a parameter received none)."""
    for p in params:
        p.grad = None
    with torch.enable_grad():
        loss = closure()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params]
    loss = loss.detach() if isinstance(loss, torch.Tensor) else torch.as_tensor(loss)
    return loss, grads


def set_grads(params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
    """Write (copies of) ``grads`` into ``p.grad``."""
    for p, g in zip(params, grads):
        p.grad = g.detach().clone()


def hessian_vector_product(closure: Callable[[], torch.Tensor], params: Sequence[torch.Tensor],
                           vectors: Sequence[torch.Tensor], *, fd_step: float = 1e-4
                           ) -> Tensors:
    """``H v`` at the current parameters: the closure's exact ``hvp`` when it offers one, else
    the central difference ``(g(w + h u) - g(w - h u)) ||v|| / (2h)``, ``u = v/||v||`` (error
    O(h^2), two closure calls). Parameters are restored bit-exactly; ``p.grad`` is left as the
    last closure call wrote it (callers restore it per the contract)."""
    exact = getattr(closure, "hvp", None)
    if exact is not None:
        return [t.detach() for t in exact(list(vectors))]
    norm = float(torch.sqrt(sum((v * v).sum() for v in vectors)))
    if norm == 0.0:
        return [torch.zeros_like(v) for v in vectors]
    scale = fd_step / norm
    saved = [p.detach().clone() for p in params]
    try:
        with torch.no_grad():
            for p, v in zip(params, vectors):
                p.add_(v, alpha=scale)
        _, g_plus = evaluate(closure, params)
        with torch.no_grad():
            for p, w, v in zip(params, saved, vectors):
                p.copy_(w).add_(v, alpha=-scale)
        _, g_minus = evaluate(closure, params)
    finally:
        with torch.no_grad():
            for p, w in zip(params, saved):
                p.copy_(w)
    return [(a - b) / (2 * scale) for a, b in zip(g_plus, g_minus)]
