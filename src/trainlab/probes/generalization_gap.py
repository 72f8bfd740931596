r"""Predicted and measured change of the generalization gap from one update.

"SGD Implicitly Regularizes Generalization Error" (Roberts, NeurIPS 2018 workshop, arXiv
2021; papers.md row 46) expands the gap :math:`G = L_{test} - L_{train}` to first order in
an update :math:`\Delta\theta`:

.. math:: \Delta G \approx (\nabla L_{test} - \nabla L_{train})\cdot\Delta\theta,

which for a gradient-descent step :math:`\Delta\theta = -\eta\nabla L_{train}` on :math:`N`
training examples is :math:`\eta(\|\nabla L_{train}\|^2 - \nabla L_{test}\cdot\nabla
L_{train})`. Averaged over training sets drawn i.i.d. from the data distribution (mean
gradient :math:`\mu`, per-example covariance :math:`\Sigma`, and a test loss that is the
population loss), :math:`E\|\nabla L_{train}\|^2 = \|\mu\|^2 + \mathrm{tr}\Sigma/N` and
:math:`E[\nabla L_{test}\cdot\nabla L_{train}] = \|\mu\|^2`, so

.. math:: E[\Delta G] = \eta\,\mathrm{tr}\,\Sigma / N:

the gap grows by the gradient noise per example, whatever the model.

The probe measures the gap of the task's train and test sets (their first ``max_examples``
examples, in eval mode) before and after the last update, and reports the first-order
prediction for that update and the paper's expectation with :math:`\Sigma` estimated from the
per-example training gradients (unbiased) and :math:`N` the size of the task's training set.

The paper's second result compares one pass of SGD over the training set, :math:`m`
mini-batches of :math:`N/m` examples, with :math:`m` full-batch GD steps at the same
learning rate: both move :math:`-m\eta\nabla L_{train}` to first order, and at second order
(:func:`expected_sgd_minus_gd`)

.. math:: E[\Delta\theta_{SGD} - \Delta\theta_{GD}]
          = -\frac{\eta^2 m(m-1)}{4N}\,\nabla\mathrm{tr}\,\Sigma, \qquad
          E[\Delta L_{test}^{SGD} - \Delta L_{test}^{GD}]
          = -\frac{\eta^2 m(m-1)}{4N}\,\mu\cdot\nabla\mathrm{tr}\,\Sigma,

because GD reuses each example's gradient in every step while SGD's steps see independent
batches: the correlated terms :math:`E[h_i g_i] - \bar H\mu = \tfrac12\nabla\mathrm{tr}\,
\Sigma` (:math:`h_i, g_i` the example's Hessian and gradient) appear only in GD. SGD thus
descends, in expectation, the gradient of the per-step gap growth
:math:`\eta\,\mathrm{tr}\,\Sigma/N` ("decorrelating nearby updates"). The expectation is
checked exactly (enumerating every training set of a finite population) in the tests.

Deviations from the paper: the second-order formula above is derived here from the paper's
setup (one epoch of SGD on disjoint batches against the same number of GD steps, a test loss
equal to the population loss); the paper's own statement of it could not be compared
(searched: the search tool's "pages" corpus, which holds ar5iv 2104.04874's abstract and
introduction only, and the "code" corpus). The probe reports the first-order quantities; the
second-order comparison is an analysis (``sgd-minus-gd``) on given :math:`\mu` and
:math:`\nabla\mathrm{tr}\,\Sigma`, which :func:`gradient_noise_terms` estimates from a
model and a sample of examples (exact per-example gradients, differentiated once more).
The prediction is made for the actual update of whatever optimizer runs, which for SGD on a
batch is not the GD step of the expectation formula.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, vmap

from trainlab.analyses import ANALYSES
from trainlab.errors import ConfigError, check_range
from trainlab.probes._probe import PROBES, Measurement, Probe, ProbeContext
from trainlab.probes.gradient_noise import noise_scale_terms
from trainlab.probes.per_sample import per_sample_grad_stats
from trainlab.restore import preserved


def predicted_gap_change(grad_train: torch.Tensor, grad_test: torch.Tensor,
                         update: torch.Tensor) -> torch.Tensor:
    r"""First-order change of :math:`L_{test} - L_{train}` for the update ``update`` (flat
    vectors): :math:`(\nabla L_{test} - \nabla L_{train})\cdot\Delta\theta`."""
    if not grad_train.shape == grad_test.shape == update.shape:
        raise ConfigError("predicted_gap_change: grad_train, grad_test and update must have "
                          f"the same shape. Got {tuple(grad_train.shape)}, "
                          f"{tuple(grad_test.shape)} and {tuple(update.shape)} instead.")
    return torch.dot(grad_test - grad_train, update)


def expected_gap_change(lr: float, trace_cov: torch.Tensor | float, n: int
                        ) -> torch.Tensor | float:
    r"""The paper's expectation over training sets for one GD step: :math:`\eta\,
    \mathrm{tr}\,\Sigma / N`."""
    check_range("lr", lr, low=0.0, owner="expected_gap_change")
    check_range("n", n, low=1, owner="expected_gap_change")
    return lr * trace_cov / n


def expected_sgd_minus_gd(lr: float, num_batches: int, n: int, mean_grad: torch.Tensor,
                          grad_trace_cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Second-order expected difference between one epoch of SGD (``num_batches`` disjoint
    batches of ``n / num_batches`` examples) and as many full-batch GD steps, both at ``lr``
    (module docstring): returns ``(E[dtheta_SGD - dtheta_GD], E[dL_test^SGD - dL_test^GD])``
    from the population's mean gradient :math:`\mu` and :math:`
abla\mathrm{tr}\,\Sigma`."""
    check_range("lr", lr, low=0.0, owner="expected_sgd_minus_gd")
    check_range("num_batches", num_batches, low=1, owner="expected_sgd_minus_gd")
    check_range("n", n, low=num_batches, owner="expected_sgd_minus_gd")
    if mean_grad.shape != grad_trace_cov.shape:
        raise ConfigError("expected_sgd_minus_gd: mean_grad and grad_trace_cov must have the "
                          f"same shape. Got {tuple(mean_grad.shape)} and "
                          f"{tuple(grad_trace_cov.shape)} instead.")
    drift = -lr ** 2 * num_batches * (num_batches - 1) / (4 * n) * grad_trace_cov
    return drift, torch.dot(mean_grad.reshape(-1), drift.reshape(-1))


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
ANALYSES.register("generalization-gap-change", expected_gap_change,
                  papers=(46,), summary="expected change of the generalization gap per SGD step")
ANALYSES.register("sgd-minus-gd", expected_sgd_minus_gd, papers=(46,),
                  summary="second-order expected difference of one SGD epoch and as many GD "
                          "steps: -lr^2 m(m-1)/(4N) grad tr(Sigma)")
