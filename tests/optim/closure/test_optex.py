"""OptEx (row 72): with an exact gradient oracle one iteration is N gradient-descent steps;
the kernelized estimate interpolates its history and matches the GP formula; with the kernel
estimate it needs fewer sequential iterations than gradient descent on a quadratic."""

from __future__ import annotations

import math

import torch
from torch.func import grad

from trainlab.optim.estimators import kernel_gradient
from trainlab.optim.optex import OptEx

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
