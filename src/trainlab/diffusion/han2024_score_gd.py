r"""Score estimation by gradient descent: denoising score matching as regression with noisy
labels, a two-layer ReLU network trained by full-batch GD, its kernel (NTK) regression
counterpart, and early stopping.

"Neural Network-Based Score Estimation in Diffusion Models: Optimization and Generalization"
(Han, Razaviyayn & Xu, ICLR 2024, papers.md row 85). With the Ornstein-Uhlenbeck forward
process :math:`x_t = \alpha_t x_0 + \sigma_t\xi`, :math:`\alpha_t = e^{-t}`,
:math:`\sigma_t^2 = 1 - e^{-2t}`, the score is
:math:`\nabla\log p_t(x) = (\alpha_t E[x_0\mid x_t = x] - x)/\sigma_t^2`, so learning the score
is learning :math:`E[x_0 \mid x_t, t]` from samples :math:`(t_i, x_{t_i}, x_{0,i})`: a regression
of the label :math:`x_0` on the input :math:`(x_t, t)` whose label noise
:math:`x_0 - E[x_0\mid x_t]` does not vanish (Sec. 3, the parametric formulation). The network
is :math:`f(z) = m^{-1/2}\sum_r a_r\,\mathrm{ReLU}(w_r^T z)` with :math:`a_r \in \{\pm1\}^d`
fixed and W trained by GD on :math:`\tfrac1{2n}\sum_i\|f(z_i) - x_{0,i}\|^2`. The paper's
claims checked here: GD is tracked by kernel regression with the network's NTK (closer as the
width grows), and training long fits the label noise, so the error against the *exact*
:math:`E[x_0\mid x_t]` is U-shaped in time and early stopping is needed.

Deviations from the paper: the input is :math:`z = (x_t, t, 1)` (a constant feature as
bias); t is drawn uniformly on ``[t_min, t_max]`` (the paper's truncation :math:`t_0`);
the hold-out early-stopping rule here is the minimum of the DSM loss on held-out noisy
labels (which differs from the exact error by a constant), not the paper's theoretical
stopping time; the error is measured in :math:`x_0` space, :math:`E\|f - E[x_0\mid
x_t]\|^2`, i.e. the score error weighted by :math:`\sigma_t^4/\alpha_t^2`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainlab.diffusion._registry import DIFFUSION
from trainlab.diffusion.mixtures import GaussianMixture
from trainlab.errors import check_range


def ou_coefficients(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`(\alpha_t, \sigma_t) = (e^{-t}, \sqrt{1 - e^{-2t}})`."""
    return torch.exp(-t), torch.sqrt(-torch.expm1(-2 * t))


@dataclass(frozen=True)
class RegressionData:
    """Inputs ``z = (x_t, t, 1)`` (n, d+2), noisy labels ``x0`` (n, d) and the exact
    conditional means ``E[x0 | x_t]`` (n, d)."""

    z: torch.Tensor
    labels: torch.Tensor
    clean: torch.Tensor


def dsm_regression_data(prior: GaussianMixture, n: int, *, t_min: float = 0.05,
                        t_max: float = 1.0, generator: torch.Generator | None = None
                        ) -> RegressionData:
    """``n`` triples ``(t, x_t, x_0)``: ``x_0`` from ``prior``, ``t ~ U[t_min, t_max]``,
    ``x_t`` by the OU process; with the exact ``E[x0 | x_t]`` of the mixture."""
    check_range("n", n, low=1, owner="dsm_regression_data")
    check_range("t_min", t_min, low=0.0, low_open=True, owner="dsm_regression_data")
    check_range("t_max", t_max, low=t_min, low_open=True, owner="dsm_regression_data")
    x0 = prior.sample(n, generator=generator)
    t = t_min + (t_max - t_min) * torch.rand(n, generator=generator, dtype=torch.float64)
    alpha, sigma = ou_coefficients(t)
    xt = alpha[:, None] * x0 + sigma[:, None] * torch.randn(x0.shape, generator=generator,
                                                            dtype=torch.float64)
    clean = (xt + sigma[:, None] ** 2 * prior.score(xt, alpha, sigma ** 2)) / alpha[:, None]
    z = torch.cat([xt, t[:, None], torch.ones(n, 1, dtype=torch.float64)], 1)
    return RegressionData(z, x0, clean)


class TwoLayerReLU(torch.nn.Module):
    r""":math:`f(z) = m^{-1/2}\sum_r a_r \mathrm{ReLU}(w_r^T z)`; ``w_r ~ N(0, I)``, ``a_r``
    uniform on :math:`\{\pm1\}^d` and fixed (a buffer)."""

    def __init__(self, in_dim: int, out_dim: int, width: int, *,
                 generator: torch.Generator | None = None):
        super().__init__()
        check_range("width", width, low=1, owner="TwoLayerReLU")
        self.w = torch.nn.Parameter(torch.randn(width, in_dim, generator=generator,
                                                dtype=torch.float64))
        signs = torch.randint(0, 2, (width, out_dim), generator=generator) * 2 - 1
        self.register_buffer("a", signs.to(torch.float64))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z @ self.w.T) @ self.a / self.a.shape[0] ** 0.5


def empirical_ntk(net: TwoLayerReLU, z: torch.Tensor) -> torch.Tensor:
    r"""The NTK Gram matrix :math:`K = JJ^T` over the outputs at ``z``, ``(n d, n d)`` with
    row index ``i d + k`` (example i, output k), in closed form:
    :math:`K_{(i,k),(j,l)} = m^{-1}\, z_i^T z_j \sum_r a_{rk}a_{rl}
    1[w_r^Tz_i > 0]1[w_r^Tz_j > 0]`."""
    act = (z @ net.w.detach().T > 0).to(z.dtype)  # (n, m)
    a = net.a
    m, d, n = a.shape[0], a.shape[1], z.shape[0]
    b = act[None] * a.T[:, None, :]  # (d, n, m): b[k, i, r] = act_ir a_rk
    prod = torch.einsum("kir,ljr->ikjl", b, b) / m
    return (prod * (z @ z.T)[:, None, :, None]).reshape(n * d, n * d)


def kernel_gd(kernel: torch.Tensor, f0: torch.Tensor, labels: torch.Tensor, lr: float,
              steps: int) -> torch.Tensor:
    r"""Kernel gradient descent on the training inputs in closed form:
    :math:`f_k = y + (I - \eta K/n)^k (f_0 - y)` (n examples; ``f0``/``labels`` (n, d))."""
    n = f0.shape[0]
    evals, evecs = torch.linalg.eigh(kernel)
    r = (f0 - labels).reshape(-1)
    decay = (1 - lr * evals / n) ** steps
    return labels + (evecs @ (decay * (evecs.T @ r))).reshape(f0.shape)


@dataclass(frozen=True)
class GDCurve:
    """Error curves of full-batch GD, recorded at ``steps``: the training loss (noisy labels),
    the held-out DSM loss (noisy labels), and the held-out exact error ``E||f - E[x0|x_t]||^2``;
    ``stop`` is the early-stopping step (minimum of the held-out DSM loss)."""

    steps: list[int]
    train: list[float]
    heldout: list[float]
    exact: list[float]
    stop: int


def train_score_gd(net: TwoLayerReLU, train: RegressionData, test: RegressionData, *,
                   lr: float = 1.0, steps: int = 20000, record_every: int = 100) -> GDCurve:
    """Full-batch GD on the first layer (module docstring); ``net`` is trained in place."""
    check_range("lr", lr, low=0.0, low_open=True, owner="train_score_gd")
    check_range("steps", steps, low=1, owner="train_score_gd")
    rec: dict[str, list] = {"steps": [], "train": [], "heldout": [], "exact": []}
    for k in range(steps + 1):
        out = net(train.z)
        loss = 0.5 * (out - train.labels).pow(2).sum(1).mean()
        if k % record_every == 0 or k == steps:
            with torch.no_grad():
                pred = net(test.z)
                rec["steps"].append(k)
                rec["train"].append(loss.item())
                rec["heldout"].append(0.5 * (pred - test.labels).pow(2).sum(1).mean().item())
                rec["exact"].append((pred - test.clean).pow(2).sum(1).mean().item())
        if k == steps:
            break
        (grad,) = torch.autograd.grad(loss, net.w)
        with torch.no_grad():
            net.w -= lr * grad
    stop = rec["steps"][min(range(len(rec["heldout"])), key=rec["heldout"].__getitem__)]
    return GDCurve(rec["steps"], rec["train"], rec["heldout"], rec["exact"], stop)


def ring_atoms(count: int = 8, radius: float = 0.9) -> GaussianMixture:
    """``count`` equally weighted point masses on a circle: a prior with bounded support (the
    paper's Assumption on the data) whose noised score is exact (zero covariances)."""
    check_range("count", count, low=1, owner="ring_atoms")
    ang = 2 * torch.pi * torch.arange(count, dtype=torch.float64) / count
    return GaussianMixture(torch.full((count,), 1 / count, dtype=torch.float64),
                           radius * torch.stack([ang.cos(), ang.sin()], 1),
                           torch.zeros(count, 2, 2, dtype=torch.float64))


def ntk_deviation(width: int, data: RegressionData, *, lr: float = 1.0, steps: int = 300,
                  generator: torch.Generator | None = None) -> float:
    r"""How far GD of a fresh width-``width`` :class:`TwoLayerReLU` is from kernel GD with
    its NTK at initialisation, on the training inputs after ``steps`` steps:
    :math:`\|f_{GD} - f_{kGD}\| / \|f_{GD} - f_0\|`."""
    net = TwoLayerReLU(data.z.shape[1], data.labels.shape[1], width, generator=generator)
    with torch.no_grad():
        f0 = net(data.z)
    kernel = empirical_ntk(net, data.z)
    train_score_gd(net, data, data, lr=lr, steps=steps, record_every=steps)
    with torch.no_grad():
        f = net(data.z)
    return ((f - kernel_gd(kernel, f0, data.labels, lr, steps)).norm() / (f - f0).norm()).item()


DIFFUSION.register("score-gd", train_score_gd, papers=(85,),
                   summary="score estimation as noisy-label regression by GD on a two-layer "
                           "ReLU network, exact score error and early stopping")

__all__ = ["GDCurve", "RegressionData", "TwoLayerReLU", "dsm_regression_data",
           "empirical_ntk", "kernel_gd", "ntk_deviation", "ou_coefficients", "ring_atoms",
           "train_score_gd"]
