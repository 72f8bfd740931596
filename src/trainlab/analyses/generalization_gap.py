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

import torch

from trainlab.errors import ConfigError, check_range


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
