r"""The generalization-gap-change probe: the measured change of the gap over the last update,
its first-order prediction and the paper's expectation (Roberts 2018/2021; papers.md row 46),
from :mod:`trainlab.analyses.generalization_gap` (the expansion, the SGD-minus-GD result and
the deviations from the paper are described there), with :func:`gradient_noise_terms`, the
estimate of the population terms from a model and a sample.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, vmap

from trainlab.analyses.generalization_gap import (
    expected_gap_change,
    predicted_gap_change,
)
from trainlab.errors import ConfigError, check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.gradient_noise import noise_scale_terms
from trainlab.probes.per_sample import per_sample_grad_stats
from trainlab.restore import preserved


def gradient_noise_terms(model: nn.Module,
                         loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                         inputs: torch.Tensor, targets: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Flat :math:`\mu` (mean per-example gradient), the unbiased :math:`\mathrm{tr}\,\Sigma`
    and its gradient :math:`\nabla\mathrm{tr}\,\Sigma` over the trainable parameters, from
    the examples ``inputs``/``targets`` (``loss_fn`` applied to one example at a time, as a
    batch of one; the model's mode and buffers are left as they are). The inputs of
    :func:`expected_sgd_minus_gd`."""
    n = len(inputs)
    if n < 2 or len(targets) != n:
        raise ConfigError(f"gradient_noise_terms: needs at least 2 examples and one target "
                          f"per input. Got {n} inputs and {len(targets)} targets instead.")
    named = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    buffers = {k: b.detach() for k, b in model.named_buffers()}
    sizes = [p.numel() for p in named.values()]

    def unflat(flat: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(flat, sizes)
        return {k: c.view_as(p) for (k, p), c in zip(named.items(), parts)}

    def example_loss(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (unflat(flat), buffers), (x[None],))
        return loss_fn(out, y[None])

    def trace_cov(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = vmap(grad(example_loss), in_dims=(None, 0, 0))(flat, inputs, targets)
        mean = g.mean(0)
        value = (g.pow(2).sum(1).mean() - mean.pow(2).sum()) * n / (n - 1)
        return value, mean.detach()

    flat = torch.cat([p.reshape(-1) for p in named.values()])
    with torch.enable_grad():
        d_trace, (value, mean) = grad_and_value(trace_cov, has_aux=True)(flat)
    return mean, value.detach(), d_trace.detach()


def _flat_grad(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for p, g in zip(params, gs)])


class GeneralizationGapChange(Probe):
    """``gen_gap`` (test minus train loss now), ``gen_gap/measured_change`` (its change over
    the last update), ``gen_gap/predicted_change`` (first-order prediction for that update),
    ``gen_gap/expected_change`` (the paper's :math:`\\eta\\,\\mathrm{tr}\\Sigma/N`) and
    ``gen_gap/trace_cov``. Needs the task; measures nothing at the first step.

    Args:
        every: cadence.
        max_examples: examples of each of the train and test sets used (the first ones).
    """

    name = "gen-gap-change"
    needs_prev_params = True

    def __init__(self, every: int = 1, max_examples: int = 1024):
        super().__init__(every)
        check_range("max_examples", max_examples, low=2, owner="gen-gap-change")
        self.max_examples = max_examples

    def measure(self, ctx: ProbeContext) -> Measurement:
        t = ctx.task
        if t is None:
            return ctx.skip(self.name, "no task was given to the monitor (the gap needs its "
                            "train and test sets)")
        if ctx.prev_params is None:  # the first step: no update to explain yet
            return {}
        k = self.max_examples
        xtr, ytr, xte, yte = t.x_train[:k], t.y_train[:k], t.x_test[:k], t.y_test[:k]
        model = ctx.model
        named = {n: p for n, p in model.named_parameters() if p.requires_grad}
        now = {n: p.detach().clone() for n, p in named.items()}
        with preserved(model, weights=True):
            model.eval()
            with torch.no_grad():
                gap_now = ctx.loss_fn(model(xte), yte) - ctx.loss_fn(model(xtr), ytr)
                for n, p in named.items():
                    p.copy_(ctx.prev_params[n])
            with torch.enable_grad():
                l_tr, l_te = ctx.loss_fn(model(xtr), ytr), ctx.loss_fn(model(xte), yte)
                g_tr, g_te = _flat_grad(model, l_tr), _flat_grad(model, l_te)
            stats = per_sample_grad_stats(model, ctx.loss_fn, xtr, ytr)
        update = torch.cat([(now[n] - ctx.prev_params[n]).reshape(-1) for n in named])
        gap_before = (l_te - l_tr).detach()
        trace_cov, _ = noise_scale_terms(stats)
        out: Measurement = {"gen_gap": gap_now, "gen_gap/measured_change": gap_now - gap_before,
                            "gen_gap/predicted_change": predicted_gap_change(g_tr, g_te,
                                                                             update),
                            "gen_gap/trace_cov": trace_cov}
        if ctx.lr is not None:
            out["gen_gap/expected_change"] = expected_gap_change(ctx.lr, trace_cov,
                                                                 len(t.x_train))
        return out


PROBES.register("gen-gap-change", GeneralizationGapChange, ddp="replicated", papers=(46,),
                metrics=("gen_gap", "gen_gap/*"),
                plot="curves", title="Generalization-gap change per step",
                summary="first-order predicted vs measured change of the generalization gap "
                        "per update, and its expectation lr*tr(Sigma)/N")
