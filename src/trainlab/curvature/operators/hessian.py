"""The Hessian of a model's loss as a linear operator."""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any, Literal

import torch
from torch.autograd.function import BackwardCFunction, once_differentiable
from torch.func import grad, jvp

from trainlab.curvature.operators._curvature import Batch, CurvatureOperator, Params
from trainlab.errors import ConfigError, check_choice, check_range

LOG = logging.getLogger("trainlab")

GRAPH_BUDGET_MB = 1024.0
"""Default ``graph_budget_mb`` of :class:`HessianOperator`: 1 GiB of retained graphs (the
largest model of ``benchmarks/probe_scaling.py``, 9.2M parameters at batch 128, keeps about
0.1 GiB)."""

Method = Literal["auto", "forward-over-reverse", "double-backward"]
METHODS = ("auto", "forward-over-reverse", "double-backward")

# the code object of the wrapper ``once_differentiable`` puts around a backward: a backward
# whose code is this one was declared not twice differentiable
_ONCE_DIFFERENTIABLE_CODE = once_differentiable(lambda ctx: None).__code__


def once_differentiable_functions(loss: torch.Tensor) -> list[str]:
    """Names of the custom ``torch.autograd.Function`` classes in ``loss``'s autograd graph
    whose ``backward`` is wrapped by ``torch.autograd.function.once_differentiable``.

    Such a backward runs without recording a graph, so a second derivative through it is
    wrong, and silently so where its incoming gradient does not require grad (then
    ``once_differentiable`` does not even install its error): double backward drops the
    Function's own second-derivative terms, and ``torch.func``'s forward-over-reverse
    product comes back wrong too. One walk over the graph's nodes (``next_functions``), no
    derivative taken."""
    found: dict[str, None] = {}
    seen: set[int] = set()
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, BackwardCFunction):
            cls = node._forward_cls
            backward = getattr(cls, "backward", None)
            if getattr(backward, "__code__", None) is _ONCE_DIFFERENTIABLE_CODE:
                found[cls.__qualname__] = None
        stack.extend(f for f, _ in node.next_functions)
    return list(found)


def _batch_tensors(batch: Batch) -> list[torch.Tensor]:
    """The tensors of a batch ``(inputs, targets)`` (inputs possibly a tuple)."""
    inputs, targets = batch
    parts = list(inputs) if isinstance(inputs, tuple) else [inputs]
    return [t for t in (*parts, targets) if isinstance(t, torch.Tensor)]


class SavedBytes(torch.autograd.graph.saved_tensors_hooks):
    """Within the context, counts the bytes of the distinct storages autograd saves for
    backward (:attr:`total`), storages of ``owned`` tensors (held by the caller anyway:
    parameters, inputs) excluded. The pack hook returns each tensor itself, so nothing
    computed changes."""

    def __init__(self, owned: list[torch.Tensor]):
        self._owned = {t.untyped_storage().data_ptr() for t in owned}
        self._seen: dict[int, int] = {}
        super().__init__(self._pack, lambda t: t)

    def _pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self._owned:
            self._seen[ptr] = storage.nbytes()
        return t

    @property
    def total(self) -> int:
        return sum(self._seen.values())


class HessianOperator(CurvatureOperator):
    r"""Hessian :math:`H = \nabla^2_\theta L(\theta)` of the (mean) batch loss.

    Two ways to multiply, neither keeping a graph between products unless asked to:

    - ``method="forward-over-reverse"``: one forward-mode derivative of the
      reverse-mode gradient, :math:`Hv = \partial_\epsilon \nabla L(\theta + \epsilon v)|_{0}`
      (``torch.func.jvp`` of ``grad``). Every module ``torch.func`` can differentiate works
      (LayerNorm, attention, custom modules, models returning their own loss with
      ``loss_fn=None``), and ``matmat`` is vectorised with ``vmap``.
    - ``method="double-backward"``: a gradient with ``create_graph=True``, then the gradient
      of :math:`\langle \nabla L, v\rangle` (Pearlmutter's reverse-over-reverse), the graph
      freed after each product. On small models on CPU a single product runs 2-3x faster than
      with ``torch.func`` (whose per-operator dispatch dominates there), but needs every
      operator's double backward. ``matmat`` still uses the vectorised forward-over-reverse
      product, which is the cheaper one per column.
    - ``method="auto"`` (default): double backward, the faster single product (1.5x faster
      than forward-over-reverse on the MNIST-1D MLP, ``benchmarks/curvature.py``); the
      first time a double-backward product fails (an operator without a double backward),
      the operator warns on the ``trainlab`` logger and uses forward-over-reverse from then
      on. Both methods compute the same product; they differ by float rounding only.

    Before its first product, the operator walks the loss's autograd graph once (one forward
    pass with ``"forward-over-reverse"``; none extra with double backward, whose first
    gradient graph is walked) and raises :class:`~trainlab.errors.ConfigError` when it holds a
    custom ``torch.autograd.Function`` whose backward is ``@once_differentiable``: neither
    method differentiates through such a backward (double backward silently drops the
    Function's second-derivative terms; ``torch.func`` returns a wrong product too), so no
    exact Hessian-vector product exists for that model. The check is exact (the wrapper's
    code object is compared, no tolerance) and costs one pass over the graph's nodes, not a
    product; numbers of every other model are unchanged. A custom Function whose backward
    is not marked, but is still not differentiable (e.g. it works with tensors saved from
    its forward without a graph), cannot be detected this way and is trusted.

    ``retain_graph=True`` (with ``"double-backward"`` or ``"auto"``) builds each batch's gradient
    graph once, at the first product, and keeps it for the operator's lifetime, as PyHessian
    does: every later product is one backward pass through it (about half the cost of a
    fresh product), at the memory of the retained graphs. A graph is rebuilt when a parameter
    was written in place since it was built (tracked by tensor version counters), so products
    always use the current values, as without ``retain_graph``.

    Memory budget of the retained graph. The retained graph holds the tensors the forward
    pass and the differentiable backward saved (activations and their second-derivative
    factors) and the gradients, beyond the parameters and the batch. On the two MLPs of
    ``benchmarks/hvp_memory.py`` (CPU allocator reports, batch 1000-1024) it keeps 0.85x-1.0x
    the peak of a plain gradient between products; the first product peaks at 1.9x-2.7x a
    gradient's peak (the same as a fresh product), a later one at 1.05x-1.7x. While the
    first graph of a batch is built, the bytes of the distinct storages autograd saves
    (``torch.autograd.graph.saved_tensors_hooks``, parameters and batch tensors excluded)
    plus the gradients' bytes are counted (the count equals the kept memory measured by the
    allocator, ``budget_estimate_over_held`` = 1.00 there); when they exceed
    ``graph_budget_mb``, the graph is used for that product and then freed, and the operator
    uses fresh products (the non-retained path) from then on, with one warning on the
    ``trainlab`` logger (once per ``run_cache`` when one is given) and the reason in
    :attr:`retain_fallback`. Both paths run the same operations, so every product is
    bit-identical; only time changes (a fresh product costs about twice a retained one). The
    budget bounds what is *kept*; the transient peak of each product is that of a fresh one.
    The counting hook is innermost while the graph is built, so a ``saved_tensors_hooks``
    context of the caller's (e.g. ``save_on_cpu``) does not apply to that graph; pass
    ``graph_budget_mb=None`` to build it under the caller's hooks (no counting, no budget).

    With ``method="double-backward"``, a model without forward-mode derivatives (e.g.
    CPU LSTMs) still gets ``matmat``: one double-backward product per column, after a
    warning on the ``trainlab`` logger.

    Args:
        method: ``"auto"``, ``"double-backward"`` or ``"forward-over-reverse"`` (above).
        retain_graph: keep each batch's gradient graph between products (above).
        graph_budget_mb: the most memory (MiB) the retained graphs may keep, summed over the
            batches (default :data:`GRAPH_BUDGET_MB`, 1024 MiB); ``None``: no limit (and no
            counting). Only used with ``retain_graph=True``.
        run_cache: a dict shared by the operators of one run; the budget warning is logged
            once per such dict (``None``: once per operator).

    See :class:`CurvatureOperator` for the other arguments.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(2, 1, bias=False)
        >>> with torch.no_grad():
        ...     _ = model.weight.fill_(1.0)
        >>> x, y = torch.eye(2), torch.zeros(2, 1)
        >>> H = HessianOperator(model, nn.MSELoss(), (x, y))  # L = mean((w.x)^2) -> H = I
        >>> H @ torch.tensor([1.0, 2.0])
        tensor([1., 2.])
    """

    def __init__(self, *args: Any, method: Method = "auto",
                 retain_graph: bool = False, graph_budget_mb: float | None = GRAPH_BUDGET_MB,
                 run_cache: dict[str, Any] | None = None, **kwargs: Any):
        check_choice("method", method, METHODS, owner="HessianOperator")
        if retain_graph and method == "forward-over-reverse":
            raise ConfigError("HessianOperator retain_graph=True needs "
                              "method='double-backward' or 'auto'.")
        if graph_budget_mb is not None:
            check_range("graph_budget_mb", graph_budget_mb, low=0.0, owner="HessianOperator")
        self.method = method
        self._double = method != "forward-over-reverse"  # products by double backward
        self.retain_graph = retain_graph
        self.graph_budget_mb = graph_budget_mb
        self.retain_fallback: str | None = None  # why retained graphs were given up, if so
        self.retained_mb = 0.0  # what the retained graphs keep (counted under a budget)
        self._run_cache = run_cache
        self._graphs: dict[int, tuple[list[torch.Tensor], tuple[torch.Tensor, ...],
                                      list[int]]] = {}
        self._graph_mb: dict[int, float] = {}  # MiB each retained graph keeps
        self._columnwise = False  # matmat by matvec columns (no forward-mode derivatives)
        self._graph_checked = False  # once_differentiable Functions looked for
        super().__init__(*args, **kwargs)

    def _check_graph(self, loss: torch.Tensor) -> None:
        """Raise when ``loss``'s graph has a ``once_differentiable`` Function (once)."""
        if self._graph_checked:
            return
        names = once_differentiable_functions(loss)
        if names:
            raise ConfigError(
                f"HessianOperator: the model uses custom autograd Function(s) "
                f"{', '.join(names)} whose backward is @once_differentiable, so no "
                "Hessian-vector product through it is exact (double backward would silently "
                "drop its second derivative); give it a differentiable backward.")
        self._graph_checked = True

    def _check_forward(self) -> None:
        """The graph check for products that build no autograd graph (torch.func): one
        plain forward pass of the first batch, once."""
        if self._graph_checked:
            return
        leaves = {n: p.detach().requires_grad_(True) for n, p in self.params.items()}
        with torch.enable_grad():
            self._check_graph(self.loss(leaves, self.batches[0]))

    def matmat(self, mat: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        self._check_forward()
        if self._double and not self._columnwise:
            try:
                return super().matmat(mat, chunk_size)
            except (NotImplementedError, RuntimeError) as exc:
                self._columnwise = True
                LOG.warning("HessianOperator.matmat: the vectorized forward-over-reverse "
                            "product failed on this model (%s); multiplying column by column "
                            "with double backward instead.",
                            (str(exc).strip().splitlines() or [type(exc).__name__])[0])
        if self._columnwise:
            self._check(mat, 2)
            return torch.stack([self.matvec(c) for c in mat.T], dim=1)
        return super().matmat(mat, chunk_size)

    def restrict(self, names: Any) -> HessianOperator:
        block = super().restrict(names)
        block._graphs, block._graph_mb = {}, {}  # a block differentiates other leaves
        block.retained_mb = 0.0
        return block

    def matvec(self, vec: torch.Tensor) -> torch.Tensor:
        if not self._double:
            self._check_forward()
            return super().matvec(vec)
        self._check(vec, 1)
        if self.method == "auto":
            try:
                return self._double_matvec(vec)
            except (NotImplementedError, RuntimeError) as exc:
                self._double, self._graphs, self._graph_mb = False, {}, {}
                LOG.warning("HessianOperator(method='auto'): double backward failed on this "
                            "model (%s); using forward-over-reverse (torch.func) instead.",
                            (str(exc).strip().splitlines() or [type(exc).__name__])[0])
                return super().matvec(vec)
        return self._double_matvec(vec)

    def _double_matvec(self, vec: torch.Tensor) -> torch.Tensor:
        tangent = self._split(vec.to(self.dtype))
        if len(self.batches) == 1:  # weight 1: the product itself, not 0 + 1 * product
            return self._join(self._double_backward(tangent, self.batches[0], 0), ())
        total = torch.zeros(self.dim, dtype=self.dtype, device=self.device)
        for i, (w, batch) in enumerate(zip(self.weights, self.batches)):
            total += w * self._join(self._double_backward(tangent, batch, i), ())
        return total

    def _product(self, tangent: Params, batch: Batch) -> Params:
        inputs, targets = batch
        # floating targets, and the floating tensors among a tuple of inputs (a model that
        # computes its own loss from its arguments), get explicit zero tangents (see
        # zero_target_tangent)
        parts = list(inputs) if isinstance(inputs, tuple) else []
        slots = [i for i, t in enumerate(parts) if self.zero_target_tangent(t) is not None]
        with_targets = self.zero_target_tangent(targets) is not None
        if not slots and not with_targets:
            g = grad(lambda p: self.loss(p, batch))
            return jvp(g, (self.params,), (tangent,))[1]

        def loss(p: Params, *data: torch.Tensor) -> torch.Tensor:
            t = data[0] if with_targets else targets
            args = list(parts)
            for i, v in zip(slots, data[1:] if with_targets else data):
                args[i] = v
            return self.loss(p, (tuple(args) if slots else inputs, t))

        primals = ([targets] if with_targets else []) + [parts[i] for i in slots]
        zeros = [torch.zeros_like(t) for t in primals]
        return jvp(grad(loss), (self.params, *primals), (tangent, *zeros))[1]

    def _gradient_graph(self, batch: Batch, index: int
                        ) -> tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]:
        """Leaves and the gradient of batch ``index`` with its graph (cached when
        ``retain_graph``)."""
        versions = [p._version for p in self.params.values()]
        cached = self._graphs.get(index)
        if cached is not None and cached[2] == versions:
            return cached[0], cached[1]
        leaves = {n: p.detach().requires_grad_(True) for n, p in self.params.items()}
        retain = self.retain_graph and self.retain_fallback is None
        counted = retain and self.graph_budget_mb is not None
        saved = SavedBytes(list(self.params.values()) + _batch_tensors(batch)) if counted \
            else None
        with torch.enable_grad(), saved if saved is not None else nullcontext():
            loss = self.loss(leaves, batch)
            self._check_graph(loss)
            grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=True)
        if saved is not None:
            kept = (saved.total + sum(g.numel() * g.element_size() for g in grads)) / 2**20
            others = sum(mb for i, mb in self._graph_mb.items() if i != index)
            if others + kept > self.graph_budget_mb:
                self._give_up_retaining(others + kept)
                retain = False
            else:
                self._graph_mb[index] = kept
                self.retained_mb = others + kept
        if retain:
            self._graphs[index] = (list(leaves.values()), grads, versions)
        return list(leaves.values()), grads

    def _give_up_retaining(self, needed_mb: float) -> None:
        """Use fresh products from now on (free the retained graphs), warn once, say why."""
        self.retain_fallback = (
            f"the retained gradient graphs would keep {needed_mb:.1f} MiB, over "
            f"graph_budget_mb={self.graph_budget_mb:g}")
        self._graphs, self._graph_mb, self.retained_mb = {}, {}, 0.0
        cache = self._run_cache if self._run_cache is not None else {}
        cache["hessian_graph_budget_fallback"] = self.retain_fallback
        if not cache.get("hessian_graph_budget_logged"):
            cache["hessian_graph_budget_logged"] = True
            LOG.warning("HessianOperator: %s; using fresh (non-retained) double-backward "
                        "products instead (same values, about twice the time per product).",
                        self.retain_fallback)

    def _double_backward(self, tangent: Params, batch: Batch, index: int) -> Params:
        names = list(self.params)
        leaves, grads = self._gradient_graph(batch, index)
        # H v = d(g . v)/dw: the backward pass of the gradient graph seeded with v itself
        # (grad_outputs). The same products as differentiating the scalar sum((g * v).sum())
        # (its mul and sum nodes only pass v on, exactly), without building those nodes:
        # about 20% less time per product on a small MLP, bit-identical (a test checks it).
        # Gradient entries that do not depend on the weights take no part in either form.
        live = [(g, tangent[n].to(g.dtype)) for g, n in zip(grads, names) if g.requires_grad]
        with torch.enable_grad():
            if live:
                hv = torch.autograd.grad([g for g, _ in live], leaves,
                                         grad_outputs=[t for _, t in live], allow_unused=True,
                                         retain_graph=index in self._graphs)
            else:  # nothing to differentiate: the same error as the scalar form raises
                dot = sum((g * tangent[n]).sum() for g, n in zip(grads, names))
                hv = torch.autograd.grad(dot, leaves, allow_unused=True,
                                         retain_graph=index in self._graphs)
        return {n: torch.zeros_like(self.params[n]) if h is None else h
                for n, h in zip(names, hv)}
