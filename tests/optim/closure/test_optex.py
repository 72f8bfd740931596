"""OptEx (row 72): with an exact gradient oracle one iteration is N gradient-descent steps;
the kernelized estimate interpolates its history and matches the GP formula; with the kernel
estimate it needs fewer sequential iterations than gradient descent on a quadratic."""

from __future__ import annotations

import logging
import math

import torch
from torch.func import grad

from trainlab.optim.estimators import kernel_gradient
from trainlab.optim.loss_closure import make_closure
from trainlab.optim.optex import OptEx, parallel_gradients

from .._function_closure import FunctionClosure

A = torch.diag(torch.tensor([3.0, 1.0, 0.3, 0.1], dtype=torch.float64))
B = torch.tensor([1.0, -1.0, 0.5, 2.0], dtype=torch.float64)


def f(w):
    return 0.5 * w @ A @ w - B @ w


class ExactOptEx(OptEx):
    def estimate(self, theta):
        return grad(f)(theta)


def test_exact_oracle_reduces_to_sequential_gradient_descent():
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = ExactOptEx([w], lr=0.2, parallelism=4, warmup=1)
    for _ in range(3):
        opt.step(FunctionClosure(f, w))
    ref = torch.zeros(4, dtype=torch.float64)
    for _ in range(1 + 4 + 4):  # the first step has no history: one plain step
        ref = ref - 0.2 * grad(f)(ref)
    torch.testing.assert_close(w.detach(), ref)
    assert len(opt.state[w]["points"]) == 1 + 4 + 4


def test_kernel_estimate_interpolates_and_matches_gp_formula():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    g = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(kernel_gradient(x, g, x, noise=1e-12, kernel="rbf",
                                               lengthscale=1.3), g, rtol=1e-6, atol=1e-8)
    q = torch.randn(3, generator=gen, dtype=torch.float64)

    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * 1.3 ** 2))

    gram = torch.tensor([[k(a, b) for b in x] for a in x], dtype=torch.float64)
    kq = torch.tensor([k(q, a) for a in x], dtype=torch.float64)
    ref = kq @ torch.linalg.solve(gram + 0.1 * torch.eye(7, dtype=torch.float64), g)
    torch.testing.assert_close(kernel_gradient(x, g, q, kernel="rbf", lengthscale=1.3,
                                               noise=0.1), ref)


def test_fewer_sequential_iterations_than_gradient_descent():
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = OptEx([w], lr=0.3, parallelism=4, history=12)
    for _ in range(15):
        opt.step(FunctionClosure(f, w))
    v = torch.zeros(4, dtype=torch.float64)
    for _ in range(15):
        v = v - 0.3 * grad(f)(v)
    f_star = float(f(torch.linalg.solve(A, B)))
    assert float(f(w.detach())) - f_star < 0.5 * (float(f(v)) - f_star)


class FunctionalClosure(FunctionClosure):
    """``FunctionClosure`` with the functional form OptEx vectorizes over."""

    def loss_at(self, tensors):
        return self.f(tensors[0])


def test_vectorized_gradients_equal_sequential_on_a_function_and_a_model():
    gen = torch.Generator().manual_seed(1)
    points = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    fast = parallel_gradients(FunctionalClosure(f, w), [w], points)
    slow = parallel_gradients(FunctionClosure(f, w), [w], points, vectorize=False)
    ref = torch.stack([grad(f)(p) for p in points])
    torch.testing.assert_close(fast[1], ref)
    torch.testing.assert_close(slow[1], ref)
    torch.testing.assert_close(fast[0], torch.stack([f(p) for p in points]))
    assert torch.equal(w.detach(), torch.zeros(4, dtype=torch.float64))
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Tanh(),
                                torch.nn.Linear(5, 2)).double()
    x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(8, 2, generator=gen, dtype=torch.float64)
    closure = make_closure(model, torch.nn.functional.mse_loss, x, y)
    params = list(model.parameters())
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    pts = theta + 0.1 * torch.randn(3, theta.numel(), generator=gen, dtype=torch.float64)
    a = parallel_gradients(closure, params, pts)
    b = parallel_gradients(closure, params, pts, vectorize=False)
    torch.testing.assert_close(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in params]), theta)


def test_vectorized_optex_iterates_equal_sequential_and_warns_once_without_functional(caplog):
    ws = [torch.nn.Parameter(torch.zeros(4, dtype=torch.float64)) for _ in range(2)]
    fast = OptEx([ws[0]], lr=0.3, parallelism=4, history=12)
    slow = OptEx([ws[1]], lr=0.3, parallelism=4, history=12, vectorize=False)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        for _ in range(6):
            fast.step(FunctionalClosure(f, ws[0]))
            slow.step(FunctionClosure(f, ws[1]))
    assert not caplog.records  # vectorized, and sequential by request
    torch.testing.assert_close(ws[0].detach(), ws[1].detach())
    torch.testing.assert_close(ws[0].grad, ws[1].grad)
    v = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    opt = OptEx([v], lr=0.3, parallelism=4, history=12)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        for _ in range(6):
            opt.step(FunctionClosure(f, v))
    assert len([r for r in caplog.records if "one after the other" in r.message]) == 1
    torch.testing.assert_close(v.detach(), ws[1].detach())


def test_batchnorm_model_vectorizes_in_eval_mode_and_warns_in_training_mode(caplog):
    gen = torch.Generator().manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                torch.nn.Linear(4, 1)).double()
    x = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(8, 1, generator=gen, dtype=torch.float64)
    params = list(model.parameters())
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    pts = theta + 0.1 * torch.randn(3, theta.numel(), generator=gen, dtype=torch.float64)
    model.eval()
    closure = make_closure(model, torch.nn.functional.mse_loss, x, y)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        a = parallel_gradients(closure, params, pts)
    assert not caplog.records
    torch.testing.assert_close(a[1], parallel_gradients(closure, params, pts,
                                                        vectorize=False)[1])
    model.train()
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        parallel_gradients(closure, params, pts)
    assert any("one after the other" in r.message for r in caplog.records)


class ItemClosure(FunctionClosure):
    """A functional form that ``vmap`` rejects (a data-dependent branch via ``float``)."""

    def loss_at(self, tensors):
        w = tensors[0]
        return f(w) if float(w.sum()) > -1e9 else -f(w)


def test_unvmappable_functional_form_falls_back_with_a_warning(caplog):
    gen = torch.Generator().manual_seed(3)
    points = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    w = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        _, grads = parallel_gradients(ItemClosure(f, w), [w], points)
    assert any("cannot be vmapped" in r.message for r in caplog.records)
    torch.testing.assert_close(grads, torch.stack([grad(f)(p) for p in points]))
