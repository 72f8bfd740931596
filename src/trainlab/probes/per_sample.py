"""Per-example gradient statistics of a batch, without materialising per-example gradients
where a layer allows it.

For a ``nn.Linear`` layer on 2-D inputs the gradient of example :math:`i` is the outer
product :math:`\\delta_i a_i^T` of the output gradient and the input, so the statistics the
probes need follow from the activations alone (the "BackPACK trick", Dangel et al. 2020):
:math:`\\|g_i\\|^2 = \\|\\delta_i\\|^2 \\|a_i\\|^2`, :math:`\\sum_i g_i = \\delta^T a` and
:math:`\\sum_i g_i^{\\odot 2} = (\\delta^{\\odot 2})^T a^{\\odot 2}`. Linear layers on inputs with
extra dimensions (sequences) get their per-example gradients by one ``einsum`` per layer.
Models with other trainable layers fall back to ``torch.func.vmap`` over ``grad``, in chunks.

During training, the inputs and output gradients of the layers are computed anyway by the
step's own forward and backward passes: a :class:`LinearCapture` (hooks, armed only on the
steps where statistics are due) records them and :func:`captured_grad_stats` turns them into
the same statistics without a second forward and backward pass.

The loss must be the *mean* of per-example losses (every trainlab task's loss is).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from trainlab.errors import ConfigError, check_range
from trainlab.probes._restore import preserved

LossFn = Callable[[torch.Tensor, Any], torch.Tensor]
Records = dict[nn.Linear, tuple[torch.Tensor, torch.Tensor]]
REUSE_MIN_WEIGHTS = 65536  # weights of a layer from which reusing the batch gradient pays


@dataclass(frozen=True)
class GradStats:
    """Sufficient statistics of the per-example gradients :math:`g_1..g_n` of a batch.

    Attributes:
        n: number of examples.
        sq_norms: :math:`\\|g_i\\|^2`, shape ``(n,)``.
        grad_sum: :math:`\\sum_i g_i` per parameter name.
        grad_sq_sum: :math:`\\sum_i g_i^{\\odot 2}` (elementwise) per parameter name.
        method: ``"linear-hooks"``, ``"vmap"`` or ``"captured"`` (from the training step's
            own passes, :func:`captured_grad_stats`).
        reused_mean: part of ``grad_sum`` came from the caller's ``mean_grad`` (it matched).
        flat_sum, flat_sq: ``grad_sum`` and ``grad_sq_sum`` as single flat vectors, in
            parameter order, when they were built that way (the dicts then hold views of
            them); None otherwise. Read-only.
    """

    n: int
    sq_norms: torch.Tensor
    grad_sum: dict[str, torch.Tensor]
    grad_sq_sum: dict[str, torch.Tensor]
    method: str
    reused_mean: bool = False
    flat_sum: torch.Tensor | None = None
    flat_sq: torch.Tensor | None = None

    def mean(self) -> dict[str, torch.Tensor]:
        """The batch gradient :math:`\\bar g = \\frac1n\\sum_i g_i`."""
        return {k: v / self.n for k, v in self.grad_sum.items()}

    def variance(self) -> dict[str, torch.Tensor]:
        """Elementwise variance over examples, :math:`\\frac1n\\sum_i g_i^2 - \\bar g^2`
        (population form, clamped at 0)."""
        return {k: (self.grad_sq_sum[k] / self.n - (self.grad_sum[k] / self.n).pow(2)
                    ).clamp_min(0.0) for k in self.grad_sum}

    def mean_sq_norm(self) -> torch.Tensor:
        """:math:`\\|\\bar g\\|^2`."""
        return sum(torch.dot(v.reshape(-1), v.reshape(-1)) for v in self.grad_sum.values()
                   ) / self.n ** 2


@dataclass(frozen=True)
class _Layout:
    """Where each trainable parameter of a Linear-only model lives: its layer, and its place
    in the flat vectors of statistics (parameter order)."""

    owners: dict[str, tuple[nn.Linear, str]]
    layers: dict[nn.Linear, dict[str, str]]
    shapes: tuple[torch.Size, ...]
    sizes: tuple[int, ...]


_LAYOUTS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[Any, ...], _Layout | None]] = (
    weakref.WeakKeyDictionary())


def _linear_layout(model: nn.Module, params: dict[str, torch.Tensor] | None = None
                   ) -> _Layout | None:
    """The layout of ``model``'s trainable parameters (``params``, by name, when the caller
    has them: detached views do), or None when some trainable parameter is not a Linear
    layer's own. Cached per model while its trainable parameters (names and storage) stay
    the same."""
    if params is None:
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    key = tuple((n, p.data_ptr()) for n, p in params.items())
    hit = _LAYOUTS.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    owners = _find_linear_owners(model)
    layout = None if owners is None else _Layout(
        owners, _layers(owners), tuple(params[n].shape for n in owners),
        tuple(params[n].numel() for n in owners))
    _LAYOUTS[model] = (key, layout)
    return layout


def _linear_owners(model: nn.Module) -> dict[str, tuple[nn.Linear, str]] | None:
    """Map each trainable parameter name to its ``(Linear module, 'weight'|'bias')``, or None
    when some trainable parameter is not a Linear layer's own (cached, see
    :func:`_linear_layout`)."""
    layout = _linear_layout(model)
    return None if layout is None else layout.owners


def _find_linear_owners(model: nn.Module) -> dict[str, tuple[nn.Linear, str]] | None:
    owners: dict[str, tuple[nn.Linear, str]] = {}
    for mname, module in model.named_modules():
        if isinstance(module, nn.Linear):
            for pname, p in module.named_parameters(recurse=False):
                if p.requires_grad:
                    owners[f"{mname}.{pname}" if mname else pname] = (module, pname)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    return {n: owners[n] for n in trainable} if set(trainable) == set(owners) else None


def _layers(owners: dict[str, tuple[nn.Linear, str]]) -> dict[nn.Linear, dict[str, str]]:
    """``{Linear module: {'weight'|'bias': parameter name}}`` in the parameter order."""
    layers: dict[nn.Linear, dict[str, str]] = {}
    for name, (module, kind) in owners.items():
        layers.setdefault(module, {})[kind] = name
    return layers


def _agrees(layers: dict[nn.Linear, dict[str, str]],
            acts: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor | None]],
            mean_grad: dict[str, torch.Tensor]) -> bool:
    """Whether ``mean_grad`` is the batch gradient of the pass whose layer inputs ``a`` and
    output gradients ``d`` are given, by cheap projections (no matrix product, one host
    sync): the bias gradient is :math:`\\sum_r d_r` and the weight gradient times the ones
    vector is :math:`d^T (a\\mathbf 1)` (rows ``r`` over examples and, for sequences,
    positions), both to 1e-4 of the largest entry. False when a gradient is missing or
    misshapen."""
    got: list[torch.Tensor] = []
    want: list[torch.Tensor] = []
    for module, names in layers.items():
        a, d = acts[module]
        if d is None:
            return False
        if a.dim() != 2:
            a, d = a.reshape(-1, a.shape[-1]), d.reshape(-1, d.shape[-1])
        for kind, name in names.items():
            g = mean_grad.get(name)
            if g is None or g.shape != getattr(module, kind).shape:
                return False
            got.append(g.sum(1) if kind == "weight" else g)
            want.append(d.T @ a.sum(1) if kind == "weight" else d.sum(0))
    if not got:
        return False
    got_t, want_t = torch.cat(got), torch.cat(want)
    return bool((got_t - want_t).abs().max() <= 1e-4 * want_t.abs().max() + 1e-12)


def _stats_linear_hooks(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any,
                        layout: _Layout,
                        mean_grad: dict[str, torch.Tensor] | None = None) -> GradStats | None:
    records: dict[nn.Linear, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor
             ) -> torch.Tensor:
        records.setdefault(module, []).append((args[0].detach(), out))
        # the rest of this (the probe's own) forward gets a copy: an in-place activation
        # such as ReLU(inplace=True) must not overwrite the output differentiated below
        return out.clone()

    modules = set(layout.layers)
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.enable_grad():
            loss = loss_fn(model(inputs), targets)
    finally:
        for h in handles:
            h.remove()
    if any(len(r) != 1 for r in records.values()) or set(records) != modules:
        return None  # a layer used twice (or not at all): per-example products do not apply
    order = list(records)
    outs = [records[m][0][1] for m in order]
    n = outs[0].shape[0]
    dz = torch.autograd.grad(loss, outs, allow_unused=True)
    acts = {m: (records[m][0][0], d) for m, d in zip(order, dz)}
    layers = layout.layers
    # the known batch gradient replaces the sum product of the wide layers only: for small
    # ones the product is cheaper than checking that the gradient is this batch's
    reuse = {m: layers[m] for m in layers if mean_grad is not None and "weight" in layers[m]
             and m.weight.numel() >= REUSE_MIN_WEIGHTS and acts[m][0].dim() == 2}
    if reuse and not _agrees(reuse, acts, mean_grad):
        reuse = {}  # not this batch's gradient (clipped, accumulated, other batch)
    return _linear_stats(layout, acts, n, n, mean_grad, set(reuse), loss, "linear-hooks")


def _linear_stats(layout: _Layout,
                  acts: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor | None]], n: int,
                  scale: int, mean_grad: dict[str, torch.Tensor] | None, reuse: set[nn.Linear],
                  like: torch.Tensor, method: str) -> GradStats:
    """Statistics from each layer's input ``a`` and output gradient ``d`` (of a loss that
    averages ``scale`` examples), over the ``n`` examples given; the layers in ``reuse``
    (2-D inputs) take their gradient sum from ``mean_grad`` (checked by the caller, all
    examples). Sums are written straight into two flat vectors (no concatenation later)."""
    total = sum(layout.sizes)
    flat = torch.empty(2 * total, dtype=like.dtype, device=like.device)
    chunks = flat.split(layout.sizes * 2)
    views = [c if len(shape) == 1 else c.view(shape)
             for c, shape in zip(chunks, layout.shapes * 2)]
    k = len(layout.sizes)
    gsum = dict(zip(layout.owners, views[:k]))
    gsq = dict(zip(layout.owners, views[k:]))
    sq_norms = torch.zeros(n, dtype=like.dtype, device=like.device)
    for module, names in layout.layers.items():
        a, d = acts[module]
        if d is None:
            for name in names.values():
                gsum[name].zero_()
                gsq[name].zero_()
            continue
        delta = d * scale  # per-example loss gradients (the batch loss is a mean)
        w_name, b_name = names.get("weight"), names.get("bias")
        if a.dim() == 2:
            # ||g_i||^2 = ||delta_i||^2 (||a_i||^2 + 1 with a bias); one product per statistic
            delta_sq = delta * delta
            rows = delta_sq.sum(1)
            if w_name is not None:
                a_sq = a * a
                sq_norms.addcmul_(rows, a_sq.sum(1))
                torch.mm(delta_sq.T, a_sq, out=gsq[w_name])
                if module in reuse:  # the sum is n times the known batch gradient
                    torch.mul(mean_grad[w_name], n, out=gsum[w_name])
                else:
                    torch.mm(delta.T, a, out=gsum[w_name])
            if b_name is not None:
                sq_norms += rows
                torch.sum(delta_sq, 0, out=gsq[b_name])
                if module in reuse:
                    torch.mul(mean_grad[b_name], n, out=gsum[b_name])
                else:
                    torch.sum(delta, 0, out=gsum[b_name])
        else:
            a3 = a.reshape(n, -1, a.shape[-1])
            d3 = delta.reshape(n, -1, delta.shape[-1])
            for kind, name in names.items():
                g = torch.einsum("nto,nti->noi", d3, a3) if kind == "weight" else d3.sum(1)
                g_sq = g * g
                sq_norms += g_sq.flatten(1).sum(1)
                torch.sum(g, 0, out=gsum[name])
                torch.sum(g_sq, 0, out=gsq[name])
    return GradStats(n, sq_norms, gsum, gsq, method, bool(reuse), flat[:total], flat[total:])


class _InertHook:
    """What a copy of a hooked model gets instead of a capture's hook (a no-op)."""

    def __call__(self, module: nn.Module, args: Any, out: Any) -> None:
        return None


class _RecordingHook:
    """Forward hook of :class:`LinearCapture` (a class, not a closure, so that a model
    carrying it can still be pickled or deep-copied: copies get an inert hook)."""

    def __init__(self, capture: LinearCapture):
        self.capture = capture

    def __call__(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        cap = self.capture
        if not cap.armed or not torch.is_grad_enabled() or not args:
            return None
        if (not isinstance(out, torch.Tensor) or not out.requires_grad
                or torch._C._are_functorch_transforms_active()):
            return None
        a, generation = args[0].detach(), cap._generation

        def keep(grad: torch.Tensor) -> None:  # returns None: the gradient is unchanged
            if cap._generation == generation:
                cap._keep(module, a, grad.detach())

        out.register_hook(keep)
        return None

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return _InertHook, ()


class LinearCapture:
    """Records, while armed, the input :math:`a` and the output gradient
    :math:`\\partial L / \\partial z` of every ``nn.Linear`` layer of ``model`` during its own
    forward and backward passes, so that :func:`captured_grad_stats` needs no second pass.

    One forward hook per Linear layer stays registered until :meth:`remove`; while disarmed
    it returns at once. Armed, in a forward pass with gradients enabled, it registers a
    tensor hook on the layer's output that keeps the gradient reaching it in the backward
    pass (the gradient with respect to the layer's own output, even when an in-place
    activation overwrites that output afterwards). Neither hook changes any value (both
    return None). When a layer is recorded more than once between two :meth:`arm` calls (a
    layer used twice, several backward passes), the last record is kept:
    :func:`captured_grad_stats` then finds that it does not add up to ``p.grad`` and refuses.
    """

    def __init__(self, model: nn.Module):
        self._model = weakref.ref(model)
        self.modules = [m for m in model.modules() if isinstance(m, nn.Linear)]
        self.armed = False
        self._generation = 0
        self._records: Records = {}
        hook = _RecordingHook(self)
        self._handles = [m.register_forward_hook(hook) for m in self.modules]

    @property
    def model(self) -> nn.Module | None:
        return self._model()

    @property
    def recorded(self) -> int:
        """Number of layers with something recorded since the last :meth:`arm` (True)."""
        return len(self._records)

    def _keep(self, module: nn.Linear, a: torch.Tensor, grad: torch.Tensor) -> None:
        self._records[module] = (a, grad)

    def arm(self, on: bool) -> None:
        """Start (dropping what was recorded) or stop recording."""
        if on:
            self._generation += 1
            self._records = {}
        self.armed = on

    def take(self) -> Records:
        """What was recorded (the last record of each layer), then forget it."""
        records, self._records = self._records, {}
        return records

    def remove(self) -> None:
        """Detach every hook and drop what was recorded."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self.armed = False
        self._generation += 1
        self._records = {}


def captured_grad_stats(model: nn.Module, records: Records,
                        mean_grad: dict[str, torch.Tensor], batch_size: int,
                        examples: int | None = None,
                        params: dict[str, torch.Tensor] | None = None) -> GradStats | None:
    """Per-example gradient statistics from what a :class:`LinearCapture` recorded in the
    training step's own forward and backward pass of a batch of ``batch_size`` examples
    (the loss being their mean), over the first ``examples`` of them (all by default).

    ``mean_grad`` is the batch gradient by parameter name (``p.grad`` right after that
    backward pass). The sum of the per-example gradients computed from the record must equal
    ``batch_size * mean_grad`` (each tensor to 1e-4 of its norm; by cheap projections when
    only the first ``examples`` are used). None when the record cannot be used (a
    trainable parameter outside an ``nn.Linear``, a layer missing, another batch size, a
    layer used twice, or a gradient that is not the recorded pass's: clipped, accumulated, or with
    extra terms); the caller then recomputes with :func:`per_sample_grad_stats`.
    ``params``: the model's trainable parameters by name, when the caller has them.
    """
    layout = _linear_layout(model, params)
    if layout is None:
        return None
    acts: dict[nn.Linear, tuple[torch.Tensor, torch.Tensor | None]] = {}
    for m in layout.layers:
        rec = records.get(m)
        if rec is None or rec[0].shape[0] != batch_size or rec[0].shape[:-1] != rec[1].shape[:-1]:
            return None
        acts[m] = rec
    n = batch_size if examples is None else min(examples, batch_size)
    like = next(iter(acts.values()))[1]
    if n < batch_size:
        if not _agrees(layout.layers, acts, mean_grad):
            return None
        acts = {m: (a[:n], d[:n]) for m, (a, d) in acts.items()}
        return _linear_stats(layout, acts, n, batch_size, None, set(), like, "captured")
    names = list(layout.owners)
    grads = [mean_grad.get(k) for k in names]
    if any(g is None or g.shape != shape for g, shape in zip(grads, layout.shapes)):
        return None
    stats = _linear_stats(layout, acts, n, n, None, set(), like, "captured")
    # the whole gradient sum against n times the batch gradient: a record of another pass,
    # or a gradient changed after the backward pass (clipped, with extra terms), is refused
    sums = list(stats.grad_sum.values())
    err = torch._foreach_norm(torch._foreach_sub(sums, grads, alpha=n))
    size = torch._foreach_norm(sums)
    if not bool((torch.stack(err) <= 1e-4 * torch.stack(size)).all()):  # per tensor
        return None
    return stats


def _stats_vmap(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor, targets: Any,
                chunk: int) -> GradStats:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            raise ConfigError("per-example gradients: a BatchNorm layer in training mode couples "
                              "the examples of a batch; put the model in eval mode")
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    buffers = {n: b.detach() for n, b in model.named_buffers()}

    def one(p: dict[str, torch.Tensor], x: torch.Tensor, y: Any) -> torch.Tensor:
        out = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    per_example = vmap(grad(one), in_dims=(None, 0, 0), randomness="different")
    n = inputs.shape[0]
    sq_norms = []
    gsum = {k: torch.zeros_like(v) for k, v in params.items()}
    gsq = {k: torch.zeros_like(v) for k, v in params.items()}
    for i in range(0, n, chunk):
        g = per_example(params, inputs[i:i + chunk], targets[i:i + chunk])
        sq_norms.append(sum(v.pow(2).flatten(1).sum(1) for v in g.values()))
        for k, v in g.items():
            gsum[k] += v.sum(0)
            gsq[k] += v.pow(2).sum(0)
    return GradStats(n, torch.cat(sq_norms), gsum, gsq, "vmap")


def per_sample_grad_stats(model: nn.Module, loss_fn: LossFn, inputs: torch.Tensor,
                          targets: Any, *, method: str = "auto", chunk: int = 256,
                          mean_grad: dict[str, torch.Tensor] | None = None) -> GradStats:
    """Per-example gradient statistics of ``loss_fn(model(inputs), targets)`` at the model's
    current parameters and mode.

    Args:
        method: ``"auto"`` (Linear-layer products when every trainable parameter belongs to
            a ``nn.Linear`` used once per forward, else ``vmap``), ``"linear-hooks"`` or
            ``"vmap"``.
        chunk: examples per ``vmap`` call (bounds memory on the fallback path).
        mean_grad: the batch gradient of this very loss by parameter name, when the caller
            already has it (``p.grad`` right after this batch's backward pass). On the
            Linear-layer path it replaces the gradient-sum product of each layer with at
            least ``REUSE_MIN_WEIGHTS`` weights (smaller products cost less than the check);
            it is checked against the recomputed forward with two cheap projections per
            such layer and ignored when it does not match (a clipped or accumulated
            gradient, another batch, dropout masks that differ).

    The model's mode, ``.grad``, weights and the global RNG are left as found.
    """
    if method not in ("auto", "linear-hooks", "vmap"):
        raise ConfigError(f"per_sample_grad_stats: method must be 'auto', 'linear-hooks' or "
                          f"'vmap'. Got {method!r} instead.")
    check_range("chunk", chunk, low=1, owner="per_sample_grad_stats")
    if method != "vmap":
        layout = _linear_layout(model)
        stats = None
        if layout is not None:
            # this path touches neither .grad nor the mode; only dropout could draw numbers
            rng = torch.get_rng_state()
            try:
                stats = _stats_linear_hooks(model, loss_fn, inputs, targets, layout, mean_grad)
            finally:
                torch.set_rng_state(rng)
        if stats is not None:
            return stats
        if method == "linear-hooks":
            raise ConfigError("per_sample_grad_stats: method 'linear-hooks' needs every "
                              "trainable parameter in an nn.Linear called once per forward")
    with preserved(model):
        return _stats_vmap(model, loss_fn, inputs, targets, chunk)
