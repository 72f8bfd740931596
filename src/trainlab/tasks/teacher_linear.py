"""Linear teacher-student regression with a chosen singular-value spectrum (row 1 setting)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainlab.errors import ConfigError, check_range
from trainlab.tasks._task import TASKS, Task


def random_orthogonal(n: int, generator: torch.Generator, dtype=torch.float64) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=dtype))
    return q * torch.sign(torch.diagonal(r))


def teacher_linear(
    in_dim: int = 16,
    out_dim: int = 16,
    singular_values: Sequence[float] | str = (4.0, 3.0, 2.0, 1.0),
    n_train: int = 1024,
    n_test: int = 1024,
    noise: float = 0.0,
    whiten: bool = True,
    data_seed: int = 0,
) -> Task:
    r"""Regression onto a linear teacher :math:`y = W x + \epsilon`, :math:`W = U S V^T`.

    This is the setting of Saxe et al. (2014, papers.md row 1): with whitened inputs
    (:math:`\Sigma^{xx} = I`) the input-output correlation :math:`\Sigma^{yx} = W` has singular
    values ``singular_values`` (zeros pad the rest), and each mode is learned on its own
    sigmoidal trajectory. ``whiten=True`` makes the *empirical* training covariance exactly
    the identity (needs ``n_train >= in_dim``), so the theory's :math:`\Sigma^{xx} = I` holds
    on the training set and not only in expectation.

    Deviations from the paper: whitening is made exact on the training set (``whiten=True``), and
    the spectrum, dimensions and sample sizes (defaults ``(4, 3, 2, 1)``, 16 by 16, 1024 points) are
    this library's, not the paper's.

    Args:
        singular_values: the teacher's spectrum; a comma-separated string is accepted.
        info: the returned task's ``info`` holds ``U``, ``S``, ``V`` (float64).
    """
    if isinstance(singular_values, str):
        singular_values = [float(s) for s in singular_values.split(",") if s.strip()]
    s = torch.tensor(list(singular_values), dtype=torch.float64)
    rank = min(in_dim, out_dim)
    if len(s) > rank:
        raise ConfigError(f"teacher_linear: {len(s)} singular values but min(in_dim, out_dim) "
                          f"= {rank}")
    check_range("noise", noise, low=0.0, owner="teacher_linear")
    g = torch.Generator().manual_seed(data_seed)
    u, v = random_orthogonal(out_dim, g), random_orthogonal(in_dim, g)
    spectrum = torch.zeros(rank, dtype=torch.float64)
    spectrum[: len(s)] = s
    w = u[:, :rank] @ torch.diag(spectrum) @ v[:, :rank].T

    def sample(n: int, white: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, in_dim, generator=g, dtype=torch.float64)
        if white:
            if n < in_dim:
                raise ConfigError(f"teacher_linear: whiten needs n_train >= in_dim ({in_dim})")
            x = x - x.mean(0)
            cov = x.T @ x / n
            evals, evecs = torch.linalg.eigh(cov)
            x = x @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T
        y = x @ w.T + noise * torch.randn(n, out_dim, generator=g, dtype=torch.float64)
        return x, y

    x_tr, y_tr = sample(n_train, whiten)
    x_te, y_te = sample(n_test, False)
    return Task("teacher-linear", "regression", x_tr.float(), y_tr.float(), x_te.float(),
                y_te.float(), num_outputs=out_dim, default_model="deep-linear",
                info={"U": u, "S": spectrum, "V": v, "W": w})


TASKS.register("teacher-linear", teacher_linear, papers=(1,),
               summary="linear teacher-student regression with a chosen singular spectrum")
