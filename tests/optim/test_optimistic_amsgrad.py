"""Optimistic-AMSGrad against a plain recurrence of the paper's Algorithm 2."""

from __future__ import annotations

import math

import pytest
import torch

from trainlab.optim import OptimisticAMSGrad


@pytest.mark.parametrize("predictor", ["last", "zero"])
def test_reference_recurrence(predictor):
    g = torch.Generator().manual_seed(4)
    grads = [torch.randn(6, generator=g, dtype=torch.float64) for _ in range(25)]
    x0 = torch.randn(6, generator=g, dtype=torch.float64)
    lr, b1, b2, eps = 0.05, 0.9, 0.99, 1e-8
    z = torch.zeros(6, dtype=torch.float64)
    theta, v, vhat, w_half, w = z.clone(), z.clone(), z.clone(), x0.clone(), x0.clone()
    for gt in grads:
        theta_prev = theta
        theta = b1 * theta + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt**2
        vhat = torch.maximum(vhat, v)
        w_half = w_half - lr * theta / (vhat.sqrt() + eps)
        m_next = gt if predictor == "last" else z
        h = b1 * theta_prev + (1 - b1) * m_next
        w = w_half - lr * h / (vhat.sqrt() + eps)
    p = x0.clone().requires_grad_(True)
    opt = OptimisticAMSGrad([p], lr=lr, betas=(b1, b2), eps=eps, predictor=predictor)
    for gt in grads:
        p.grad = gt.clone()
        opt.step()
    torch.testing.assert_close(p.detach(), w, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(opt.state[p]["half"], w_half, rtol=1e-12, atol=1e-13)


def test_converges_on_quadratic():
    x = torch.full((4,), 3.0, dtype=torch.float64, requires_grad=True)
    opt = OptimisticAMSGrad([x], lr=0.05)
    for _ in range(2000):
        opt.zero_grad()
        ((x - 1.0) ** 2).sum().backward()
        opt.step()
    torch.testing.assert_close(x.detach(), torch.ones(4, dtype=torch.float64), atol=1e-3,
                               rtol=0)


@pytest.mark.parametrize("predictor", ["last", "zero"])
def test_half_steps_are_torch_amsgrad_and_the_last_guess_extrapolates(predictor):
    """The half iterates w_{t+1/2} are AMSGrad without bias correction: torch's AMSGrad (an
    independent implementation) with eps = 0 and its bias corrections undone by the schedule
    lr_t = lr (1 - b1^t) / sqrt(1 - b2^t). With the "last" guess m_{t+1} = g_t the optimistic
    direction h_t = b1 theta_{t-1} + (1 - b1) g_t is theta_t itself, so the weights are the
    extrapolation w_t = 2 w_{t+1/2} - w_{t-1/2} of torch's path; with "zero", h_t = b1 theta_{t-1}
    and w_t = w_{t+1/2} + b1 (w_{t-1/2} - w_{t-3/2}) sqrt(vhat_{t-1} / vhat_t)."""
    g = torch.Generator().manual_seed(8)
    grads = [torch.randn(6, generator=g, dtype=torch.float64) for _ in range(40)]
    x0 = torch.randn(6, generator=g, dtype=torch.float64)
    lr, b1, b2 = 0.05, 0.9, 0.99
    q = x0.clone().requires_grad_(True)
    ref = torch.optim.Adam([q], lr=lr, betas=(b1, b2), eps=0.0, amsgrad=True, foreach=False)
    sched = torch.optim.lr_scheduler.LambdaLR(
        ref, lambda k: (1 - b1 ** (k + 1)) / math.sqrt(1 - b2 ** (k + 1)))
    p = x0.clone().requires_grad_(True)
    opt = OptimisticAMSGrad([p], lr=lr, betas=(b1, b2), eps=0.0, predictor=predictor)
    halves, vhats = [x0.clone()], [None]
    for gt in grads:
        q.grad = gt.clone()
        ref.step()
        sched.step()
        p.grad = gt.clone()
        opt.step()
        halves.append(q.detach().clone())
        vhats.append(ref.state[q]["max_exp_avg_sq"].clone())
        torch.testing.assert_close(opt.state[p]["half"], halves[-1], rtol=1e-12, atol=1e-13)
        if predictor == "last":
            want = 2 * halves[-1] - halves[-2]
        elif len(halves) == 2:  # theta_0 = 0
            want = halves[-1]
        else:
            want = halves[-1] + b1 * (halves[-2] - halves[-3]) * (vhats[-2] / vhats[-1]).sqrt()
        torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-13)
