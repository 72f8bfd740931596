"""The base of every curvature operator of a model's loss: data loop, parameters, blocks.

A curvature operator ``C`` of ``(model, loss_fn, data)`` at parameters ``params`` multiplies
flat vectors laid out as the concatenation of ``params`` in dict order. Over several batches
it is the batch-size-weighted mean ``sum_b (N_b / N) C_b``, i.e. the curvature of the mean
loss over all samples when ``loss_fn`` averages over its batch. Subclasses supply one
per-batch product on parameter dicts, :meth:`CurvatureOperator._product`; ``torch.func.vmap``
over it gives the batched ``matmat``.

Operators take ``params`` explicitly and never touch ``.grad``, ``requires_grad``, the
module's training mode or its buffers (they work on detached copies).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, vmap

from trainlab.curvature.operators._linear import LinearOperator
from trainlab.curvature.randomness import FixedRandomness
from trainlab.errors import ConfigError

with warnings.catch_warnings():
    # torch registers its forward-mode (jvp) decompositions with torch.jit.script on first
    # use, which emits a DeprecationWarning from inside torch; import it once, quietly, so
    # callers running with warnings as errors are not broken by the first HVP.
    warnings.simplefilter("ignore", DeprecationWarning)
    with contextlib.suppress(ImportError):  # a torch without that module has no warning
        import torch._decomp.decompositions_for_jvp  # noqa: F401

Batch = tuple[Any, Any]
Params = dict[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, Any], torch.Tensor]


def _cast(x: Any, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return x
    if isinstance(x, torch.Tensor):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, (tuple, list)):
        return type(x)(_cast(t, dtype) for t in x)
    return x


def _batch_size(inputs: Any) -> int:
    first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
    if not isinstance(first, torch.Tensor) or first.ndim == 0:
        raise ConfigError("Curvature operators need batched tensor inputs (the first input's "
                          f"leading dimension is the batch); got {type(first).__name__}.")
    return first.shape[0]


def as_batches(data: Batch | Sequence[Batch]) -> list[Batch]:
    """``data`` is one ``(inputs, targets)`` tuple, or a *list* of them."""
    if isinstance(data, list):
        if not data:
            raise ConfigError("The 'data' list of a curvature operator is empty.")
        return [tuple(b) for b in data]
    if isinstance(data, tuple) and len(data) == 2:
        return [data]
    raise ConfigError("'data' must be an (inputs, targets) tuple or a list of them; got "
                      f"{type(data).__name__}.")


def parameter_groups(names: Iterable[str]) -> dict[str, list[str]]:
    """Group parameter names by the module that owns them (``"0.weight" -> "0"``)."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n.rpartition(".")[0] or n, []).append(n)
    return groups


class CurvatureOperator(LinearOperator):
    """Base class: the curvature of ``loss_fn(model(inputs), targets)`` w.r.t. ``params``.

    Args:
        model: any module ``torch.func.functional_call`` can run.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``; ``None`` when the model computes
            its own loss (``model(*inputs)`` returns the scalar; targets are ignored).
        data: one ``(inputs, targets)`` batch or a list of them (``inputs`` may be a tuple).
        params: the parameters to differentiate, by name (default: the model's trainable
            parameters); the others are held fixed at their current values.
        dtype: compute in this dtype (e.g. ``torch.float64``); parameters, buffers and
            floating inputs are cast copies; the model is not modified.
        check_deterministic: evaluate the first batch's loss twice and raise
            :class:`~trainlab.errors.ConfigError` if it differs (dropout in train mode).
        fixed_randomness: draw the model's randomness once (dropout masks in train mode)
            and reuse it in every evaluation (:class:`~trainlab.curvature.randomness.
            FixedRandomness`: the global RNG state at construction is replayed around each
            forward pass and the caller's state restored), so the operator is the curvature
            of the loss for one fixed set of masks; with it the determinism check passes
            for dropout. Default False.
    """

    needs_loss_fn = False

    def __init__(self, model: nn.Module, loss_fn: LossFn | None, data: Batch | Sequence[Batch],
                 params: Params | None = None, *, dtype: torch.dtype | None = None,
                 check_deterministic: bool = True, fixed_randomness: bool = False):
        if loss_fn is None and self.needs_loss_fn:
            raise ConfigError(f"{type(self).__name__} needs a loss_fn(outputs, targets); a "
                              "model that computes its own loss only supports the Hessian.")
        self.model, self.loss_fn = model, loss_fn
        named = dict(model.named_parameters())
        if params is None:
            params = {n: p for n, p in named.items() if p.requires_grad}
        unknown = [n for n in params if n not in named]
        if unknown:
            raise ConfigError(f"params has names the model does not have: {unknown}; valid "
                              f"names: {list(named)}.")
        if not params:
            raise ConfigError("A curvature operator needs at least one parameter.")
        self.params: Params = {n: _cast(p.detach(), dtype) for n, p in params.items()}
        self._fixed: Params = {n: _cast(p.detach(), dtype) for n, p in named.items()
                               if n not in params}
        self._buffers = {n: _cast(b.detach().clone(), dtype) for n, b in model.named_buffers()}
        self._updates_buffers = any(
            isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
            and m.track_running_stats for m in model.modules())
        self.batches = [(_cast(x, dtype), _cast(y, dtype)) for x, y in as_batches(data)]
        sizes = [_batch_size(x) for x, _ in self.batches]
        self.weights = [s / sum(sizes) for s in sizes]
        first = next(iter(self.params.values()))
        self.dtype, self.device = first.dtype, first.device
        self.dim = sum(p.numel() for p in self.params.values())
        self.randomness = FixedRandomness(self.device) if fixed_randomness else None
        if check_deterministic:
            self._check_deterministic()

    # ----- the model as a function of the parameters -------------------------------------
    def outputs(self, params: Params, inputs: Any) -> Any:
        """``model(inputs)`` at ``params`` (the fixed parameters and buffers filled in)."""
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        # BatchNorm in training mode updates its running statistics in place: give it fresh
        # copies, which torch.func transforms allow (and the operator's own stay as built)
        buffers = ({n: b.clone() for n, b in self._buffers.items()} if self._updates_buffers
                   else self._buffers)
        if self.randomness is None:
            return functional_call(self.model, ({**self._fixed, **params}, buffers), args)
        with self.randomness.replay():
            return functional_call(self.model, ({**self._fixed, **params}, buffers), args)

    def loss(self, params: Params, batch: Batch) -> torch.Tensor:
        """The batch loss at ``params``."""
        inputs, targets = batch
        out = self.outputs(params, inputs)
        return out if self.loss_fn is None else self.loss_fn(out, targets)

    @staticmethod
    def zero_target_tangent(targets: Any) -> torch.Tensor | None:
        """Materialized zeros shaped like floating ``targets`` (else None).

        Differentiating a loss in forward mode over its reverse-mode gradient while the
        targets carry torch's implicit zero tangent fails inside ``mse_loss``'s backward
        ("ZeroTensors are immutable", torch 2.13); giving floating targets an explicit zero
        tangent avoids it at the cost of one elementwise op.
        """
        if isinstance(targets, torch.Tensor) and targets.is_floating_point():
            return torch.zeros_like(targets)
        return None

    def _check_deterministic(self) -> None:
        state = torch.get_rng_state()
        try:
            with torch.no_grad():
                a, b = (self.loss(self.params, self.batches[0]) for _ in range(2))
        finally:
            torch.set_rng_state(state)
        if not torch.equal(a, b):
            raise ConfigError(f"{type(self).__name__}: the loss differs between two identical "
                              f"evaluations ({a.item()!r} vs {b.item()!r}); put the model in "
                              "eval mode (dropout?) or pass check_deterministic=False.")

    # ----- products ------------------------------------------------------------------------
    @abstractmethod
    def _product(self, tangent: Params, batch: Batch) -> Params:
        """The curvature of one batch times ``tangent`` (a dict shaped like ``params``)."""

    def _split(self, flat: torch.Tensor) -> Params:
        """Rows ``(..., dim)`` -> dict of ``(..., *shape)``."""
        out, i = {}, 0
        lead = flat.shape[:-1]
        for n, p in self.params.items():
            out[n] = flat[..., i:i + p.numel()].reshape(*lead, *p.shape)
            i += p.numel()
        return out

    def _join(self, tensors: Params, lead: tuple[int, ...]) -> torch.Tensor:
        return torch.cat([tensors[n].reshape(*lead, -1) for n in self.params], dim=-1)

    def matvec(self, vec: torch.Tensor) -> torch.Tensor:
        self._check(vec, 1)
        tangent = self._split(vec.to(self.dtype))
        total = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for w, batch in zip(self.weights, self.batches):
            total += w * self._join(self._product(tangent, batch), ())
        return total

    def matmat(self, mat: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """``C @ mat`` for ``mat`` of shape ``(dim, k)``, vectorised over the ``k`` columns
        with ``torch.func.vmap`` (``chunk_size`` bounds the columns done at once)."""
        self._check(mat, 2)
        k = mat.shape[1]
        tangents = self._split(mat.to(self.dtype).T)
        total = torch.zeros(k, self.dim, dtype=self.dtype, device=self.device)
        for w, batch in zip(self.weights, self.batches):
            out = vmap(lambda t, b=batch: self._product(t, b), chunk_size=chunk_size,
                       randomness="error" if self.randomness is None else "same")(tangents)
            total += w * self._join(out, (k,))
        return total.T

    # ----- blocks ---------------------------------------------------------------------------
    def restrict(self, names: Iterable[str]) -> CurvatureOperator:
        """The diagonal block of this operator for the parameters ``names`` (the others held
        fixed): the same curvature, differentiated w.r.t. a subset."""
        names = list(names)
        missing = [n for n in names if n not in self.params]
        if not names or missing:
            raise ConfigError(f"restrict() needs a non-empty subset of {list(self.params)}; "
                              f"got {names}.")
        block = copy.copy(self)
        block.params = {n: self.params[n] for n in names}
        block._fixed = {**self._fixed, **{n: p for n, p in self.params.items()
                                         if n not in block.params}}
        block.dim = sum(p.numel() for p in block.params.values())
        return block

    def blocks(self, groups: dict[str, list[str]] | None = None) -> dict[str, CurvatureOperator]:
        """One diagonal block per parameter group (default: per module, e.g. per layer)."""
        groups = parameter_groups(self.params) if groups is None else groups
        return {g: self.restrict(names) for g, names in groups.items()}

    def flat_params(self) -> torch.Tensor:
        """The parameters as one flat vector (this operator's layout)."""
        return self._join(self.params, ())
