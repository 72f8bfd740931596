"""SAM, GAM and gradient regularization against references written from the papers, and SAM
against pytorch_optimizer."""

from __future__ import annotations

import pytest
import torch
from torch.func import grad

from trainlab.optim import build_optimizer
from trainlab.optim.loss_closure import make_closure

from .._tiny_mlp import clone, flat_grads, flat_params, functional, mse


def _penalized_grad(f, w, coef, power):
    """Exact gradient of f + coef * ||grad f||^power by double backprop (autograd)."""
    w = w.clone().requires_grad_(True)
    g = torch.autograd.grad(f(w), w, create_graph=True)[0]
    pen = coef * g.norm() ** power
    return torch.autograd.grad(f(w) + pen, w)[0]


def _one_step(name, model, x, y, **hyper):
    opt = build_optimizer(name, model.parameters(), lr=1.0, **hyper)
    loss = opt.step(make_closure(model, mse, x, y))
    return opt, loss


def test_sam_step_is_gradient_at_ascent_point(problem):
    model, x, y = problem
    f, w = functional(model, x, y)
    g = grad(f)(w)
    ref = grad(f)(w + 0.05 * g / g.norm())
    _, loss = _one_step("sam", model, x, y, rho=0.05)
    torch.testing.assert_close(flat_params(model), w - ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(flat_grads(model), g)  # contract: p.grad = pre-step gradient
    torch.testing.assert_close(loss, f(w))


def test_asam_step_matches_definition(problem):
    model, x, y = problem
    f, w = functional(model, x, y)
    g = grad(f)(w)
    t = w.abs()
    eps = 0.5 * t * t * g / (t * g).norm()
    _one_step("sam", model, x, y, rho=0.5, adaptive=True)
    torch.testing.assert_close(flat_params(model), w - grad(f)(w + eps), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("adaptive,rho", [(False, 0.05), (True, 0.5)])
def test_sam_and_asam_match_pytorch_optimizer_over_many_steps(problem, adaptive, rho):
    """20 steps over SGD with momentum and weight decay against pytorch_optimizer's SAM (an
    independent implementation of Foret et al. 2021 / Kwon et al. 2021), float64 (theirs
    takes the gradient norm in float32: agreement to ~1e-8 relative, not to the bit)."""
    po = pytest.importorskip("pytorch_optimizer")
    model, x, y = problem
    twin = clone(model)
    base = {"momentum": 0.9, "weight_decay": 1e-2}
    ours = build_optimizer("sam", model.parameters(), lr=0.1, rho=rho, adaptive=adaptive,
                           **base)
    theirs = po.SAM(twin.parameters(), torch.optim.SGD, rho=rho, adaptive=adaptive, lr=0.1,
                    foreach=False, **base)

    def their_closure():
        theirs.zero_grad()
        loss = mse(twin(x), y)
        loss.backward()
        return loss

    closure = make_closure(model, mse, x, y)
    for _ in range(20):
        ours.step(closure)
        their_closure()
        theirs.step(their_closure)
        torch.testing.assert_close(flat_params(model), flat_params(twin), rtol=1e-6,
                                   atol=1e-8)


def test_sam_direction_is_gradient_of_norm_penalty_to_second_order(problem):
    model, x, y = problem
    f, w = functional(model, x, y)
    exact = lambda rho: _penalized_grad(f, w, rho, 1)  # noqa: E731  d/dw [L + rho ||g||]
    errs = []
    for rho in (1e-2, 5e-3):
        m = clone(model)
        _one_step("sam", m, x, y, rho=rho)
        errs.append((w - flat_params(m) - exact(rho)).norm())
    assert errs[0] < 1e-3
    assert 3.0 < errs[0] / errs[1] < 5.0  # O(rho^2) error


def test_gam_matches_reference_procedure(problem):
    model, x, y = problem
    f, w = functional(model, x, y)
    gf = grad(f)
    rho, nrho, gamma = 0.1, 0.02, 0.3
    g0 = gf(w)
    g1 = gf(w + rho * g0 / g0.norm())
    d = g1 - g0
    w2 = w + nrho * d / d.norm()
    g2 = gf(w2)
    g3 = gf(w2 + rho * g2 / g2.norm())
    u = g1 + g3
    m = g0 + g2
    ref = u - gamma * (m - (m @ u) / (u @ u) * u)
    _one_step("gam", model, x, y)
    torch.testing.assert_close(flat_params(model), w - ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(flat_grads(model), g0)


@pytest.mark.parametrize("method", ["forward", "backward"])
def test_finite_difference_gr_converges_to_exact_penalized_gradient(problem, method):
    model, x, y = problem
    f, w = functional(model, x, y)
    gamma = 0.1
    exact = _penalized_grad(f, w, gamma / 2, 2)
    errs = []
    for eps in (1e-2, 5e-3):
        m = clone(model)
        _one_step("gradient-regularization", m, x, y, gamma=gamma, epsilon=eps, method=method)
        errs.append((w - flat_params(m) - exact).norm())
    assert errs[0] < 1e-2
    assert 1.7 < errs[0] / errs[1] < 2.3  # O(epsilon) error


def test_double_backprop_gr_is_exact(problem):
    model, x, y = problem
    f, w = functional(model, x, y)
    exact = _penalized_grad(f, w, 0.1 / 2, 2)
    _one_step("gradient-regularization", model, x, y, gamma=0.1, method="double_backprop")
    torch.testing.assert_close(flat_params(model), w - exact, rtol=1e-10, atol=1e-12)


def test_gr_needs_hvp_for_double_backprop(problem):
    from trainlab.errors import ConfigError

    model, x, y = problem
    opt = build_optimizer("gradient-regularization", model.parameters(), lr=0.1,
                          method="double_backprop")
    closure = make_closure(model, mse, x, y)
    with pytest.raises(ConfigError, match="hvp"):
        opt.step(lambda: closure())


def _authors_gam_step(model, base, x, y, rho, norm_rho, gamma, beta1=1.0, beta2=-1.0,
                      beta3=1.0, eps=1e-12):
    """One step of the authors' GAM (xxgege/GAM, gam/gam.py: ``GAM.step`` with
    ``perturb_weights``, ``grad_norm_ascent``, ``gradient_decompose``), restated in float64:
    the four gradients at w, w + e0, w + e1 and w + e1 + e2 (each radius over the norm plus
    1e-12), the decomposition with the cosine of pro_m = g0 + |beta2| g2 and
    u = beta1 g1 + beta3 g3, then the base optimizer's step on that direction."""
    params = list(model.parameters())

    def grads():
        base.zero_grad()
        mse(model(x), y).backward()
        return [p.grad.detach().clone() for p in params]

    def norm(ts):
        return torch.sqrt(sum((t ** 2).sum() for t in ts))

    def shift(ts, sign=1.0):
        with torch.no_grad():
            for p, t in zip(params, ts):
                p.add_(sign * t)

    g0 = grads()
    e0 = [rho / (norm(g0) + eps) * g for g in g0]
    shift(e0)
    g1 = grads()
    shift(e0, -1.0)
    d = [a - b for a, b in zip(g1, g0)]
    e12 = [norm_rho / (norm(d) + eps) * t for t in d]
    shift(e12)
    g2 = grads()
    e2 = [rho / (norm(g2) + eps) * g for g in g2]
    shift(e2)
    e12 = [a + b for a, b in zip(e12, e2)]
    g3 = grads()
    pro_m = [a + abs(beta2) * b for a, b in zip(g0, g2)]
    u = [beta1 * a + beta3 * b for a, b in zip(g1, g3)]
    nu, nm = norm(u), norm(pro_m)
    cosine = sum((a * b).sum() for a, b in zip(pro_m, u)) / (nu * nm + eps)
    shift(e12, -1.0)
    for p, a, m in zip(params, u, pro_m):
        p.grad = a - gamma * (m - cosine * nm * a / (nu + eps))
    base.step()


def test_gam_matches_the_authors_procedure_over_sgd_momentum(problem):
    """20 GAM steps at the authors' defaults (rho 0.1, norm_rho 0.02, gamma 0.3) over SGD with
    momentum and weight decay, against the authors' step restated above (float64)."""
    model, x, y = problem
    twin = clone(model)
    base = {"momentum": 0.9, "weight_decay": 1e-2}
    ours = build_optimizer("gam", model.parameters(), lr=0.1, **base)
    theirs = torch.optim.SGD(twin.parameters(), lr=0.1, **base)
    closure = make_closure(model, mse, x, y)
    for _ in range(20):
        ours.step(closure)
        _authors_gam_step(twin, theirs, x, y, rho=0.1, norm_rho=0.02, gamma=0.3)
        torch.testing.assert_close(flat_params(model), flat_params(twin), rtol=1e-10,
                                   atol=1e-12)
