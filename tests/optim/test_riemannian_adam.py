"""Riemannian Adam/AMSGrad against geoopt on spheres and Poincare balls, and against Adam."""

from __future__ import annotations

import pytest
import torch

from trainlab.optim import RiemannianAdam
from trainlab.optim.manifolds import PoincareBall, Sphere

from ._problems import assert_close_lists, run

geoopt = pytest.importorskip("geoopt")

GEOOPT = {"sphere": "SphereExact", "sphere_retr": "Sphere", "poincare": "PoincareBallExact",
          "poincare_retr": "PoincareBall"}


def _points(name, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    if name.startswith("sphere"):
        return x / x.norm(dim=-1, keepdim=True)
    return 0.3 * x / (1 + x.norm(dim=-1, keepdim=True))


def _loss(x, t):
    g = torch.Generator().manual_seed(100 + t)
    a = torch.randn(5, 3, generator=g, dtype=torch.float64)
    return ((x - 0.2 * a) ** 2).sum() + 0.5 * (x[:, 0] ** 3).sum()


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("name", list(GEOOPT))
def test_matches_geoopt(name, amsgrad):
    kw = dict(lr=1e-2, amsgrad=amsgrad, weight_decay=1e-3)
    x0 = _points(name)
    ours = x0.clone().requires_grad_(True)
    opt = RiemannianAdam([ours], manifold=name, **kw)
    ref = geoopt.ManifoldParameter(x0.clone(), manifold=getattr(geoopt, GEOOPT[name])())
    ropt = geoopt.optim.RiemannianAdam([ref], **kw)
    for t in range(200):
        for o, p in ((opt, ours), (ropt, ref)):
            o.zero_grad()
            _loss(p, t).backward()
            o.step()
    torch.testing.assert_close(ours.detach(), ref.detach(), rtol=1e-9, atol=1e-11)
    if name.startswith("sphere"):
        torch.testing.assert_close(ours.detach().norm(dim=-1),
                                   torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-12)
    else:
        assert float(ours.detach().norm(dim=-1).max()) < 1.0


@pytest.mark.parametrize("amsgrad", [False, True])
def test_euclidean_is_adam(amsgrad):
    ours, _ = run(lambda p: RiemannianAdam(p, lr=1e-2, amsgrad=amsgrad), 200)
    ref, _ = run(lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=amsgrad), 200)
    assert_close_lists(ours, ref, rtol=1e-12, atol=1e-13)


def test_poincare_transport_is_an_isometry_and_gyration_identity():
    ball = PoincareBall()
    g = torch.Generator().manual_seed(1)
    x = 0.4 * torch.rand(4, 3, generator=g, dtype=torch.float64)
    y = -0.3 * torch.rand(4, 3, generator=g, dtype=torch.float64)
    v = torch.randn(4, 3, generator=g, dtype=torch.float64)
    w = ball.transp(x, y, v)
    torch.testing.assert_close(ball.component_inner(y, w), ball.component_inner(x, v))
    torch.testing.assert_close(ball.gyration(x, torch.zeros_like(x), v), v)  # gyr[a,0] = id


def test_sphere_exp_map_moves_along_great_circle():
    s = Sphere()
    x = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    u = torch.tensor([[0.0, torch.pi / 2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(s.retr(x, u), torch.tensor([[0.0, 1.0, 0.0]],
                                                          dtype=torch.float64), atol=1e-15,
                               rtol=0)


def test_unknown_manifold_lists_valid_names():
    with pytest.raises(KeyError, match="poincare"):
        RiemannianAdam([torch.zeros(2, requires_grad=True)], manifold="hyperbolic")


@pytest.mark.parametrize("amsgrad", [False, True])
def test_euclidean_fast_path_equals_reference(amsgrad):
    """The fused-kernel path on Euclidean groups against the module's own reference, with
    L2 weight decay and maximize, in float64."""
    from trainlab.optim.riemannian_adam import _single_tensor_riemannian_adam

    g = torch.Generator().manual_seed(0)
    shapes = [(5, 4), (4,), (3, 2, 2)]
    ps = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]
    ref = [p.detach().clone() for p in ps]
    m = [torch.zeros_like(p) for p in ref]
    v = [torch.zeros_like(p) for p in ref]
    vmax = [torch.zeros_like(p) for p in ref] if amsgrad else [None] * len(ref)
    opt = RiemannianAdam(ps, lr=1e-2, weight_decay=0.1, amsgrad=amsgrad, maximize=True)
    for t in range(1, 16):
        grads = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        for p, gr in zip(ps, grads):
            p.grad = gr.clone()
        opt.step()
        _single_tensor_riemannian_adam(ref, grads, m, v, vmax, [t] * len(ref),
                                       manifold="euclidean", lr=1e-2, beta1=0.9, beta2=0.999,
                                       eps=1e-8, weight_decay=0.1, amsgrad=amsgrad,
                                       maximize=True)
    assert_close_lists([p.detach() for p in ps], ref, rtol=1e-12, atol=1e-14)
