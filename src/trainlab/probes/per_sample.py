"""Per-example gradient statistics of a batch, without materialising per-example gradients
where a layer allows it.

For a ``nn.Linear`` layer on 2-D inputs the gradient of example :math:`i` is the outer
product :math:`\\delta_i a_i^T` of the output gradient and the input, so the statistics the
probes need follow from the activations alone (the "BackPACK trick", Dangel et al. 2020):
:math:`\\|g_i\\|^2 = \\|\\delta_i\\|^2 \\|a_i\\|^2`, :math:`\\sum_i g_i = \\delta^T a` and
:math:`\\sum_i g_i^{\\odot 2} = (\\delta^{\\odot 2})^T a^{\\odot 2}`. Linear layers on inputs with
extra dimensions (sequences) get their per-example gradients by one ``einsum`` per layer.
Models with other trainable layers fall back to ``torch.func.vmap`` over ``grad``, in chunks.

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
REUSE_MIN_WEIGHTS = 65536  # weights of a layer from which reusing the batch gradient pays


@dataclass(frozen=True)
class GradStats:
    """Sufficient statistics of the per-example gradients :math:`g_1..g_n` of a batch.

    Attributes:
        n: number of examples.
        sq_norms: :math:`\\|g_i\\|^2`, shape ``(n,)``.
        grad_sum: :math:`\\sum_i g_i` per parameter name.
        grad_sq_sum: :math:`\\sum_i g_i^{\\odot 2}` (elementwise) per parameter name.
        method: ``"linear-hooks"`` or ``"vmap"``.
        reused_mean: part of ``grad_sum`` came from the caller's ``mean_grad`` (it matched).
    """

    n: int
    sq_norms: torch.Tensor
    grad_sum: dict[str, torch.Tensor]
    grad_sq_sum: dict[str, torch.Tensor]
    method: str
    reused_mean: bool = False

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


_OWNERS: weakref.WeakKeyDictionary[nn.Module, tuple[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary())


def _linear_owners(model: nn.Module) -> dict[str, tuple[nn.Linear, str]] | None:
    """Map each trainable parameter name to its ``(Linear module, 'weight'|'bias')``, or None
    when some trainable parameter is not a Linear layer's own. Cached per model while its
    named parameters (identity and ``requires_grad``) stay the same."""
    key = tuple((n, id(p), p.requires_grad) for n, p in model.named_parameters())
    hit = _OWNERS.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    owners = _find_linear_owners(model)
    _OWNERS[model] = (key, owners)
    return owners


def _find_linear_owners(model: nn.Module) -> dict[str, tuple[nn.Linear, str]] | None:
    owners: dict[str, tuple[nn.Linear, str]] = {}
    for mname, module in model.named_modules():
        if isinstance(module, nn.Linear):
            for pname, p in module.named_parameters(recurse=False):
                if p.requires_grad:
                    owners[f"{mname}.{pname}" if mname else pname] = (module, pname)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    return {n: owners[n] for n in trainable} if set(trainable) == set(owners) else None


def _mean_grad_mismatch(module: nn.Linear, a: torch.Tensor, d: torch.Tensor,
                        mean_grad: dict[str, torch.Tensor], names: dict[str, str]
                        ) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """``(error, scale)`` pairs that compare the given batch gradient of a 2-D Linear layer
    with this forward's, by cheap projections (no matrix product): the bias gradient is
    :math:`\\sum_i d_i` and the weight gradient times the ones vector is
    :math:`d^T (a\\mathbf 1)`. None when a gradient is missing or misshapen."""
    out = []
    for kind, name in names.items():
        g = mean_grad.get(name)
        if g is None or g.shape != getattr(module, kind).shape:
            return None
        got, want = (g.sum(1), d.T @ a.sum(1)) if kind == "weight" else (g, d.sum(0))
        out.append(((got - want).abs().max(), want.abs().max()))
    return out


def _stats_linear_hooks(model: nn.Module, loss_fn: LossFn, inputs: Any, targets: Any,
                        owners: dict[str, tuple[nn.Linear, str]],
                        mean_grad: dict[str, torch.Tensor] | None = None) -> GradStats | None:
    records: dict[nn.Linear, list[tuple[torch.Tensor, torch.Tensor]]] = {}

    def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        records.setdefault(module, []).append((args[0].detach(), out))

    modules = {m for m, _ in owners.values()}
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
    sq_norms = torch.zeros(n, dtype=loss.dtype, device=loss.device)
    gsum: dict[str, torch.Tensor] = {}
    gsq: dict[str, torch.Tensor] = {}
    layers: dict[nn.Linear, dict[str, str]] = {}
    for name, (module, kind) in owners.items():
        layers.setdefault(module, {})[kind] = name
    # the known batch gradient replaces the sum product of the wide layers only: for small
    # ones the product is cheaper than checking that the gradient is this batch's
    reuse = {m for m, names in layers.items() if mean_grad is not None and "weight" in names
             and m.weight.numel() >= REUSE_MIN_WEIGHTS}
    pairs = []
    for m in reuse:
        a, d = acts[m]
        got = (None if d is None or a.dim() != 2
               else _mean_grad_mismatch(m, a, d, mean_grad, layers[m]))
        if got is None:
            reuse, pairs = set(), []
            break
        pairs += got
    if pairs:
        err, scale = (torch.stack(v) for v in zip(*pairs))
        if not bool((err <= 1e-4 * scale.max() + 1e-12).all()):  # one host sync
            reuse = set()  # not this batch's gradient (clipped, accumulated, other batch)
    for module, names in layers.items():
        a, d = acts[module]
        if d is None:
            for kind, name in names.items():
                gsum[name] = torch.zeros_like(getattr(module, kind))
                gsq[name] = torch.zeros_like(getattr(module, kind))
            continue
        delta = d * n  # per-example loss gradients (the batch loss is a mean)
        w_name, b_name = names.get("weight"), names.get("bias")
        if a.dim() == 2:
            # ||g_i||^2 = ||delta_i||^2 (||a_i||^2 + 1 with a bias); one product per statistic
            delta_sq = delta * delta
            rows = delta_sq.sum(1)
            if w_name is not None:
                a_sq = a * a
                sq_norms.addcmul_(rows, a_sq.sum(1))
                gsq[w_name] = delta_sq.T @ a_sq
                if module not in reuse:
                    gsum[w_name] = delta.T @ a
            if b_name is not None:
                sq_norms += rows
                gsq[b_name] = delta_sq.sum(0)
                if module not in reuse:
                    gsum[b_name] = delta.sum(0)
            if module in reuse:  # the sum is n times the known batch gradient
                gsum.update({k: mean_grad[k] * n for k in (w_name, b_name) if k})
        else:
            a3 = a.reshape(n, -1, a.shape[-1])
            d3 = delta.reshape(n, -1, delta.shape[-1])
            for kind, name in names.items():
                g = torch.einsum("nto,nti->noi", d3, a3) if kind == "weight" else d3.sum(1)
                g_sq = g * g
                sq_norms += g_sq.flatten(1).sum(1)
                gsum[name], gsq[name] = g.sum(0), g_sq.sum(0)
    names = list(owners)  # in the model's parameter order
    return GradStats(n, sq_norms.detach(), {k: gsum[k].detach() for k in names},
                     {k: gsq[k].detach() for k in names}, "linear-hooks", bool(reuse))


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
        owners = _linear_owners(model)
        stats = None
        if owners is not None:
            # this path touches neither .grad nor the mode; only dropout could draw numbers
            rng = torch.get_rng_state()
            try:
                stats = _stats_linear_hooks(model, loss_fn, inputs, targets, owners, mean_grad)
            finally:
                torch.set_rng_state(rng)
        if stats is not None:
            return stats
        if method == "linear-hooks":
            raise ConfigError("per_sample_grad_stats: method 'linear-hooks' needs every "
                              "trainable parameter in an nn.Linear called once per forward")
    with preserved(model):
        return _stats_vmap(model, loss_fn, inputs, targets, chunk)
