"""The closure of :mod:`trainlab.optim.closure` for a model, loss and batch, with curvature
products, plus the few operations every multi-pass method performs on closures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vjp

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

    def _current(self) -> dict[str, torch.Tensor]:
        return {n: p.detach() for n, p in zip(self._names, self.params)}

    def _forward(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        rest = {n: p.detach() for n, p in self.model.named_parameters() if n not in params}
        buffers = {n: b.detach() for n, b in self.model.named_buffers()}
        args = self.inputs if isinstance(self.inputs, tuple) else (self.inputs,)
        return functional_call(self.model, ({**rest, **params}, buffers), args)

    def _as_dict(self, vectors: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        if len(vectors) != len(self.params):
            raise ConfigError(f"LossClosure: expected {len(self.params)} tensors, got "
                              f"{len(vectors)}")
        return dict(zip(self._names, vectors))

    def hvp(self, vectors: Sequence[torch.Tensor]) -> Tensors:
        """Hessian of the batch loss times ``vectors`` (forward-over-reverse)."""
        g = grad(lambda q: self.loss_fn(self._forward(q), self.targets))
        _, hv = jvp(g, (self._current(),), (self._as_dict(vectors),))
        return [hv[n].detach() for n in self._names]

    def ggn_vp(self, vectors: Sequence[torch.Tensor]) -> Tensors:
        """Generalized Gauss-Newton ``J^T H_out J`` times ``vectors`` (``J``: Jacobian of the
        outputs in the parameters; ``H_out``: Hessian of the loss in the outputs)."""
        outputs, jv = jvp(self._forward, (self._current(),), (self._as_dict(vectors),))
        g_out = grad(lambda o: self.loss_fn(o, self.targets))
        _, hjv = jvp(g_out, (outputs.detach(),), (jv,))
        _, pullback = vjp(self._forward, self._current())
        (jthjv,) = pullback(hjv)
        return [jthjv[n].detach() for n in self._names]


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
