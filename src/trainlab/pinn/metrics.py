r"""PDEBench's error metrics on a gridded solution (papers.md row 80).

For a prediction :math:`u` and reference :math:`v` on a grid with (optional) time axis first,
spatial axes next and components last, and :math:`e = u - v`:

* ``rel_l2``: :math:`\|e\|_2 / \|v\|_2` over the whole grid (the number PINN papers quote);
* ``rmse``: :math:`\sqrt{\mathrm{mean}\, e^2}`; ``max_error``: :math:`\max |e|`;
* ``nrmse``: per time slice and component, :math:`\|e\|_2 / \|v\|_2` over space, then the
  mean over slices and components (the whole grid when there is no space axis);
* ``brmse``: the RMSE over the grid points on the spatial boundary (first or last index
  along some spatial axis), all times;
* ``crmse``: the RMSE over time of the error of a conserved quantity: the problem's
  ``conserved`` function when it has one, else the spatial mean of each component;
* ``frmse_low`` / ``frmse_mid`` / ``frmse_high``: with :math:`\hat e_k` the discrete Fourier
  coefficients of :math:`e` over the spatial axes (``norm="forward"``, so that
  :math:`\sum_k |\hat e_k|^2 = \mathrm{mean}_x\, e^2`, Parseval), the square root of the mean
  over time and components of :math:`\sum_{k \in B} |\hat e_k|^2` for the radial wavenumber
  bands :math:`B` = [0, 4), [4, 12), [12, inf) (PDEBench's band limits). The three squared
  band errors add up to ``rmse ** 2``.

References:
    Takamoto et al., "PDEBench: An Extensive Benchmark for Scientific Machine Learning",
    NeurIPS Datasets and Benchmarks 2022 (papers.md row 80), section 4 and appendix on
    metrics.

Deviations from the paper: the definitions are re-implemented from the paper's text (the
reference implementation carries a non-commercial licence and was not used). The Fourier
normalisation is chosen so that the band errors decompose the RMSE; PDEBench normalises its
fRMSE differently, so absolute fRMSE values are comparable only up to that constant.
"""

from __future__ import annotations

import math

import torch

BANDS = {"low": (0.0, 4.0), "mid": (4.0, 12.0), "high": (12.0, math.inf)}


def _layout(problem) -> tuple[bool, tuple[int, ...]]:
    """(has a time axis, shape of the grid)."""
    return problem.coords[0] == "t", tuple(problem.grid_shape)


def grid_metrics(pred: torch.Tensor, ref: torch.Tensor, *, time_axis: bool,
                 conserved=None) -> dict[str, torch.Tensor]:
    """The metrics of the module docstring for gridded ``pred`` and ``ref`` of shape
    ``(n_t, n_1, ..., n_s, m)`` (``time_axis=True``) or ``(n_1, ..., n_s, m)``."""
    if not time_axis:
        pred, ref = pred[None], ref[None]
    e = pred - ref
    space = tuple(range(1, e.ndim - 1))
    out = {"rel_l2": e.norm() / ref.norm(), "rmse": e.pow(2).mean().sqrt(),
           "max_error": e.abs().max()}
    if space:
        num = e.pow(2).sum(space).sqrt()
        den = ref.pow(2).sum(space).sqrt()
        out["nrmse"] = (num / den).mean()
        edge = torch.zeros(e.shape[1:-1], dtype=torch.bool)
        for i in range(len(space)):
            idx = [slice(None)] * len(space)
            for end in (0, -1):
                idx[i] = end
                edge[tuple(idx)] = True
        out["brmse"] = e[:, edge].pow(2).mean().sqrt()
        coeff = torch.fft.fftn(e, dim=space, norm="forward").abs().pow(2)
        freqs = [torch.fft.fftfreq(e.shape[d], d=1.0 / e.shape[d]) for d in space]
        radius = torch.sqrt(sum(f ** 2 for f in torch.meshgrid(*freqs, indexing="ij")))
        for name, (lo, hi) in BANDS.items():
            band = (radius >= lo) & (radius < hi)
            out[f"frmse_{name}"] = coeff[:, band].sum(1).mean().sqrt()
    else:
        out["nrmse"] = out["rel_l2"]
    if time_axis:
        if conserved is not None:
            c_pred, c_ref = conserved(pred), conserved(ref)
        else:
            c_pred, c_ref = pred.mean(space), ref.mean(space)
        out["crmse"] = (c_pred - c_ref).pow(2).mean().sqrt()
    return out


def pde_metrics(pred: torch.Tensor, ref: torch.Tensor, problem) -> dict[str, torch.Tensor]:
    """The metrics for predictions at ``problem.grid`` (rows ``(n, m)``), reshaped to the
    problem's grid. On a one-axis grid (an ODE's times, or the scattered nodes of a mesh)
    only the global metrics apply, and for ODE problems ``crmse`` is the energy error."""
    time_axis, shape = _layout(problem)
    m = pred.shape[-1]
    if len(shape) == 1:  # an ODE (time only) or scattered points: no spatial grid
        e = pred - ref
        out = {"rel_l2": e.norm() / ref.norm(), "rmse": e.pow(2).mean().sqrt(),
               "max_error": e.abs().max(), "nrmse": e.norm() / ref.norm()}
        if problem.conserved is not None and time_axis:
            err = problem.conserved(pred) - problem.conserved(ref)
            out["crmse"] = err.pow(2).mean().sqrt()
        return out
    return grid_metrics(pred.reshape(*shape, m), ref.reshape(*shape, m), time_axis=time_axis,
                        conserved=problem.conserved if time_axis else None)


def _register() -> None:
    from trainlab.analyses import ANALYSES

    ANALYSES.register("pdebench-metrics", pde_metrics, papers=(80,),
                      summary="PDEBench errors of a PDE solution: RMSE, nRMSE, max, boundary, "
                              "conserved, Fourier bands")


_register()
