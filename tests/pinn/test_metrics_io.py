"""PDEBench metrics against hand-computed values; the HDF5 reader on files the test writes."""

import math

import h5py
import numpy as np
import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.pinn.metrics import grid_metrics, pde_metrics
from trainlab.pinn.pdebench_io import read_pdebench
from trainlab.pinn.problems import build_problem


def test_metrics_by_hand_on_a_two_by_four_grid():
    ref = torch.tensor([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]], dtype=torch.float64)
    err = torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    m = grid_metrics((ref + err)[..., None], ref[..., None], time_axis=True)
    assert m["rmse"].item() == pytest.approx(math.sqrt(6 / 8))
    assert m["rel_l2"].item() == pytest.approx(math.sqrt(6 / 46))
    assert m["max_error"].item() == 1.0
    # per time: sqrt(2)/sqrt(30) and 2/4
    assert m["nrmse"].item() == pytest.approx((math.sqrt(2 / 30) + 0.5) / 2)
    # boundary = first and last x of each time: errors 0,1 and 1,1
    assert m["brmse"].item() == pytest.approx(math.sqrt(3 / 4))
    # conserved (spatial mean): 0.5 and 1.0
    assert m["crmse"].item() == pytest.approx(math.sqrt((0.25 + 1.0) / 2))
    # Fourier: t0 error [0,1,0,1] = 0.5 - 0.5 cos(pi x): |c0|^2 = 0.25, |c2|^2 = 0.25;
    # t1 error constant 1: |c0|^2 = 1. All wavenumbers < 4: low band only.
    assert m["frmse_low"].item() == pytest.approx(math.sqrt((0.5 + 1.0) / 2))
    assert m["frmse_mid"].item() == 0.0 and m["frmse_high"].item() == 0.0


def test_fourier_bands_split_the_rmse():
    n = 64
    x = torch.arange(n, dtype=torch.float64) / n
    e = (0.3 * torch.sin(2 * math.pi * 2 * x) + 0.2 * torch.sin(2 * math.pi * 7 * x)
         + 0.1 * torch.cos(2 * math.pi * 20 * x))
    ref = torch.ones(3, n, 1, dtype=torch.float64)
    m = grid_metrics(ref + e[None, :, None], ref, time_axis=True)
    for band, amp in (("low", 0.3), ("mid", 0.2), ("high", 0.1)):
        assert m[f"frmse_{band}"].item() == pytest.approx(amp / math.sqrt(2), rel=1e-12)
    total = sum(m[f"frmse_{b}"] ** 2 for b in ("low", "mid", "high"))
    assert total.item() == pytest.approx(m["rmse"].item() ** 2, rel=1e-12)


def test_ode_metrics_report_the_energy_error():
    p = build_problem("oscillator", grid_points=11)
    ref = p.reference(p.grid)
    m = pde_metrics(ref * 1.1, ref, p)  # energy scales by 1.21
    assert m["crmse"].item() == pytest.approx(0.21 * 0.5, rel=1e-12)
    assert m["rel_l2"].item() == pytest.approx(0.1, rel=1e-12)


def test_reader_reads_the_three_layouts(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5, 8))
    with h5py.File(tmp_path / "adv.hdf5", "w") as f:
        f["tensor"] = a
        f["x-coordinate"] = np.linspace(0, 1, 8)
        f["t-coordinate"] = np.linspace(0, 2, 6)  # one more than the stored times
    d = read_pdebench(tmp_path / "adv.hdf5")
    assert d.layout == "tensor" and d.u.shape == (3, 5, 8, 1) and len(d.coords["t"]) == 5
    np.testing.assert_array_equal(d.u[..., 0].numpy(), a)
    sub = read_pdebench(tmp_path / "adv.hdf5", samples=slice(1, 2))
    np.testing.assert_array_equal(sub.u[0, ..., 0].numpy(), a[1])

    rho, vx = rng.standard_normal((2, 4, 6, 6)), rng.standard_normal((2, 4, 6, 6))
    with h5py.File(tmp_path / "cfd.hdf5", "w") as f:
        f["density"], f["Vx"] = rho, vx
        f["x-coordinate"], f["y-coordinate"] = np.arange(6.0), np.arange(6.0)
    d = read_pdebench(tmp_path / "cfd.hdf5")
    assert d.layout == "fields" and d.channels == ("density", "Vx")
    np.testing.assert_array_equal(d.u[..., 1].numpy(), vx)

    data = rng.standard_normal((2, 4, 5, 5, 2))
    with h5py.File(tmp_path / "rd.h5", "w") as f:
        for i in range(2):
            g = f.create_group(f"{i:04d}")
            g["data"] = data[i]
            g["grid/x"], g["grid/y"], g["grid/t"] = np.arange(5.0), np.arange(5.0), np.arange(4.0)
    d = read_pdebench(tmp_path / "rd.h5")
    assert d.layout == "groups" and d.u.shape == (2, 4, 5, 5, 2) and set(d.coords) == {
        "t", "x", "y"}
    np.testing.assert_array_equal(d.u.numpy(), data)


def test_reader_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read PDEBench file"):
        read_pdebench(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ConfigError, match="cannot read PDEBench file"):
        read_pdebench(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(ConfigError, match="'tensor', 'fields', 'groups'") as err:
        read_pdebench(tmp_path / "other.h5")
    assert "\n" not in str(err.value)
