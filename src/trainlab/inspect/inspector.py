"""The init-time inspector: initialize a model under one or several schemes and measure its
initial state without training.

For each scheme: per-layer forward statistics and backward gradient variance through depth
(:func:`trainlab.probes.signal_propagation.layer_signals`), the singular values of the
input-output Jacobian and of the product of weight matrices (:mod:`.spectra`), the initial
guessing bias (:mod:`.guessing_bias`, papers.md row 16) and the top Hessian eigenvalue of the
loss at step 0 (:func:`trainlab.curvature.top_eigenvalue`). The caller's model is never
modified: each scheme initializes its own copy.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from trainlab.curvature import make_hvp, top_eigenvalue
from trainlab.errors import ConfigError
from trainlab.init import INITS, apply
from trainlab.init._apply import Selector, selected
from trainlab.inspect.spectra import jacobian_singular_values, weight_product_singular_values
from trainlab.probes.guessing_bias import guessing_bias
from trainlab.probes.signal_propagation import layer_signals

MEASURES = ("signal", "jacobian", "weights", "bias", "hessian")


@dataclass(frozen=True)
class SchemeInspection:
    """The measured initial state of one model under one init scheme.

    Attributes:
        scheme: the init scheme's name.
        layers: names of the weight layers, input to output.
        forward_mean, forward_var: mean and variance of each weight layer's output
            (pre-activations) on the batch.
        backward_var: variance of the loss gradient with respect to each layer's output,
            times the batch size squared (a per-example scale).
        jacobian_sv: singular values of the input-output Jacobian (sorted, decreasing).
        weight_product_sv: singular values of the product of the weight matrices, when the
            layers are fully connected and chain; else empty.
        guessing_bias: fraction of the batch given the most frequent class.
        class_fractions: predicted-class fractions on the batch.
        hessian_top: top eigenvalue of the loss Hessian at step 0 (NaN if not measured).
        init_converged: whether a data-dependent scheme reached its tolerance.
    """

    scheme: str
    layers: tuple[str, ...] = ()
    forward_mean: tuple[float, ...] = ()
    forward_var: tuple[float, ...] = ()
    backward_var: tuple[float, ...] = ()
    jacobian_sv: tuple[float, ...] = ()
    weight_product_sv: tuple[float, ...] = ()
    guessing_bias: float = math.nan
    class_fractions: tuple[float, ...] = ()
    hessian_top: float = math.nan
    init_converged: bool = True

    def summary(self) -> dict[str, float]:
        """Scalar summaries: output/input forward variance ratio, input/output backward ratio,
        Jacobian singular-value median and log10 spread, IGB, lambda_max."""

        def ratio(a: Sequence[float], first_over_last: bool = False) -> float:
            if len(a) < 2 or a[0] == 0 or a[-1] == 0:
                return math.nan
            return a[0] / a[-1] if first_over_last else a[-1] / a[0]

        sv = [s for s in self.jacobian_sv if s > 0]
        spread = math.log10(max(sv) / min(sv)) if sv else math.nan
        median = sorted(self.jacobian_sv)[len(self.jacobian_sv) // 2] if self.jacobian_sv \
            else math.nan
        return {"forward_var_ratio": ratio(self.forward_var),
                "backward_var_ratio": ratio(self.backward_var, first_over_last=True),
                "jacobian_sv_median": median, "jacobian_sv_log10_spread": spread,
                "guessing_bias": self.guessing_bias, "hessian_top": self.hessian_top}


@dataclass(frozen=True)
class Inspection:
    """All schemes' inspections of one model on one batch (``meta`` says which)."""

    schemes: tuple[SchemeInspection, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes None."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return clean({"meta": self.meta,
                      "schemes": [dict(asdict(s), summary=s.summary()) for s in self.schemes]})


def _init_batch(scheme: str, inputs: torch.Tensor, targets: Any) -> Any:
    entry = INITS.entry(scheme)
    if not entry.info.needs_batch:
        return None
    return (inputs, targets) if entry.info.batch_kind == "pair" else inputs


def inspect_scheme(model: nn.Module, scheme: str, inputs: torch.Tensor, targets: Any,
                   loss_fn: Callable[[torch.Tensor, Any], torch.Tensor], *, seed: int = 0,
                   select: Selector | None = None, measures: Sequence[str] = MEASURES,
                   hessian_iters: int = 20, jacobian_inputs: int = 4,
                   **hyper: Any) -> SchemeInspection:
    """Initialize ``model`` **in place** with ``scheme`` (generator seeded by ``seed``) and
    measure it. Use :func:`inspect_init` to keep the caller's model untouched."""
    unknown = set(measures) - set(MEASURES)
    if unknown:
        raise ConfigError(f"unknown measures {sorted(unknown)}; choose from {MEASURES}")
    gen = torch.Generator().manual_seed(seed)
    report = apply(model, scheme, batch=_init_batch(scheme, inputs, targets), generator=gen,
                   select=select, **hyper)
    out: dict[str, Any] = {"scheme": scheme, "init_converged": report.converged}
    names = [n for n, _ in selected(model, select)]
    out["layers"] = tuple(names)
    if "signal" in measures:
        signals = layer_signals(model, loss_fn, inputs, targets)
        b = inputs.shape[0]
        fwd = [signals[n][0] for n in names if n in signals]
        out["forward_mean"] = tuple(float(a.double().mean()) for a in fwd)
        out["forward_var"] = tuple(float(a.double().var()) for a in fwd)
        out["backward_var"] = tuple(
            float((signals[n][1].double() * b).var()) if signals[n][1] is not None else math.nan
            for n in names if n in signals)
    if "jacobian" in measures:
        out["jacobian_sv"] = tuple(jacobian_singular_values(model, inputs, jacobian_inputs)
                                   .double().tolist())
    if "weights" in measures:
        sv = weight_product_singular_values(model, select)
        out["weight_product_sv"] = () if sv is None else tuple(sv.tolist())
    if "bias" in measures:
        gb = guessing_bias(model, inputs)
        out["guessing_bias"], out["class_fractions"] = gb.max_fraction, gb.class_fractions
    if "hessian" in measures:
        hvp, dim = make_hvp(model, loss_fn, inputs, targets)
        dtype = next(model.parameters()).dtype
        top = top_eigenvalue(hvp, dim, max_iter=hessian_iters, tol=1e-3,
                             generator=torch.Generator().manual_seed(seed), dtype=dtype)
        out["hessian_top"] = top.values[0].item()
    return SchemeInspection(**out)


def inspect_init(model: nn.Module | Callable[[], nn.Module], batch: tuple[torch.Tensor, Any],
                 schemes: Sequence[str], loss_fn: Callable[[torch.Tensor, Any], torch.Tensor], *,
                 seed: int = 0, select: Selector | None = None, measures: Sequence[str] = MEASURES,
                 hyper: dict[str, dict[str, Any]] | None = None, hessian_iters: int = 20,
                 jacobian_inputs: int = 4, meta: dict[str, Any] | None = None) -> Inspection:
    """Inspect the initial state of ``model`` under each of ``schemes``.

    Args:
        model: an ``nn.Module`` (deep-copied per scheme; never modified) or a zero-argument
            builder returning a fresh model.
        batch: ``(inputs, targets)``; also the batch data-dependent schemes (LSUV) use.
        schemes: init scheme names (``trainlab list inits``).
        loss_fn: ``loss_fn(outputs, targets)`` (e.g. ``task.loss``).
        seed: seeds every scheme's generator (the same draw for every scheme).
        select: which layers count as weight layers (default: Linear/Conv).
        measures: a subset of ``("signal", "jacobian", "weights", "bias", "hessian")``.
        hyper: per-scheme hyper-parameters, ``{"kumar": {"activation": "tanh"}}``.
    """
    if not schemes:
        raise ConfigError("inspect_init needs at least one init scheme")
    for s in schemes:
        INITS.entry(s)  # unknown names fail before any work
    inputs, targets = batch
    results = []
    for s in schemes:
        m = copy.deepcopy(model) if isinstance(model, nn.Module) else model()
        results.append(inspect_scheme(m, s, inputs, targets, loss_fn, seed=seed, select=select,
                                      measures=measures, hessian_iters=hessian_iters,
                                      jacobian_inputs=jacobian_inputs,
                                      **(hyper or {}).get(s, {})))
    return Inspection(tuple(results), dict(meta or {}, seed=seed, batch_size=int(inputs.shape[0])))
