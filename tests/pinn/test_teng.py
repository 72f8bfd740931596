"""TENG (papers.md row 7): a step on a model linear in its parameters is the exact L2
projection (dense float64), Heun on Fourier modes is the closed-form Heun factor, a small
network follows the 2D heat equation, and bad input gets one-line errors."""

import math

import pytest
import torch
from torch import nn

from trainlab.errors import ConfigError
from trainlab.optim.procedures import PROCEDURES
from trainlab.pinn.chen2024_teng import natural_gradient_fit, teng
from trainlab.pinn.problems import build_problem

from ._autograd_reference import values_and_laplacians

D = 0.1


class Features(nn.Module):
    """Fixed (parameter-free) periodic features of (x, y): tanh of random combinations of
    cos/sin, or pure Fourier modes."""

    def __init__(self, k: int, fourier: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(5)
        self.fourier = fourier
        self.register_buffer("w", torch.randn(4, k, generator=g, dtype=torch.float64))
        self.register_buffer("b", torch.randn(k, generator=g, dtype=torch.float64))
        modes = [(m, n) for m in range(1, 4) for n in range(1, 4)][:k]
        self.register_buffer("modes", torch.tensor(modes, dtype=torch.float64))

    def forward(self, x):
        if self.fourier:
            return torch.sin(x[:, :1] * self.modes[:, 0]) * torch.sin(x[:, 1:] * self.modes[:, 1])
        z = torch.cat([torch.cos(x), torch.sin(x)], 1)
        return torch.tanh(z @ self.w + self.b)


def _linear_model(k, fourier=False, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(Features(k, fourier), nn.Linear(k, 1, bias=False).double())


def _quadrature(points):
    axis = torch.arange(points, dtype=torch.float64) * (2 * math.pi / points)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)


def test_one_euler_step_on_a_linear_model_is_the_exact_least_squares_projection():
    net = _linear_model(12)
    points, dt = 12, 0.01
    phi, lap = values_and_laplacians(net[0], _quadrature(points))
    theta0 = net[1].weight.detach()[0].clone()
    target = phi @ theta0 + dt * D * (lap @ theta0)
    expected = torch.linalg.solve(phi.T @ phi, phi.T @ target)  # dense normal equations
    out = teng("heat-2d", net, scheme="euler", dt=dt, horizon=dt, grid_t=2, grid_x=4,
               points=points, first_iterations=1, initial_iterations=0, solver="lstsq")
    theta = out.net[1].weight.detach()[0]
    torch.testing.assert_close(theta, expected, rtol=1e-9, atol=1e-12)
    assert not torch.allclose(theta, theta0 * (1 - dt * D * 2), atol=1e-6)  # not trivial
    assert torch.equal(net[1].weight.detach()[0], theta0)  # the caller's model untouched
    # the damped solver's first iteration is the same projection up to its tiny damping
    out = teng("heat-2d", net, scheme="euler", dt=dt, horizon=dt, grid_t=2, grid_x=4,
               points=points, first_iterations=1, initial_iterations=0)
    torch.testing.assert_close(out.net[1].weight.detach()[0], expected, rtol=1e-5,
                               atol=1e-7)


def test_heun_on_fourier_modes_is_the_heun_amplification_factor():
    net = _linear_model(9, fourier=True, seed=1)
    theta0 = net[1].weight.detach()[0].clone()
    dt = 0.5
    out = teng("heat-2d", net, scheme="heun", dt=dt, horizon=dt, grid_t=2, grid_x=4, points=8,
               first_iterations=1, iterations=1, initial_iterations=0, solver="lstsq")
    modes = net[0].modes
    z = -dt * D * (modes ** 2).sum(1)
    torch.testing.assert_close(out.net[1].weight.detach()[0], theta0 * (1 + z + z ** 2 / 2),
                               rtol=1e-10, atol=1e-12)


def test_a_small_network_follows_the_2d_heat_equation():
    g = torch.Generator().manual_seed(0)
    res = teng("heat-2d", scheme="heun", dt=0.05, horizon=0.2, grid_t=3, grid_x=16, points=16,
               width=12, depth=3, initial_iterations=150, iterations=3, first_iterations=4,
               generator=g, r=0.3)
    assert res.times == [0.0, 0.1, 0.2]
    assert res.initial_error < 3e-3
    assert res.space_time_rel_l2 < 1e-2, res.rel_l2
    # a network that does not move fails: the solution decays by about 4 % over 0.2
    frozen = teng("heat-2d", res.net, dt=0.05, horizon=0.2, grid_t=3, grid_x=16, points=16,
                  initial_iterations=0, iterations=0, first_iterations=0, r=0.3)
    assert frozen.space_time_rel_l2 > 3 * res.space_time_rel_l2
    assert PROCEDURES.entry("teng").papers == (7,)


def test_fit_reports_its_residual_and_bad_input_gets_one_line_errors():
    net = _linear_model(6)
    x = _quadrature(6)
    target = torch.sin(x[:, 0])
    res = natural_gradient_fit(net, x, target, 1, solver="lstsq")
    with torch.no_grad():
        exact = torch.linalg.lstsq(net[0](x), target[:, None]).solution
        best = (net[0](x) @ exact)[:, 0] - target
    assert res == pytest.approx(float(best.norm() / target.norm()), rel=1e-9)
    for kwargs, match in (({"scheme": "rk4"}, "'scheme'.*'euler', 'heun'"),
                          ({"solver": "svd"}, "'solver'.*'damped', 'lstsq'"),
                          ({"dt": 0.3}, "multiples of dt"),
                          ({"dt": 0.0}, "'dt' parameter of teng")):
        with pytest.raises(ConfigError, match=match) as err:
            teng("heat-2d", net, grid_t=3, initial_iterations=0, **kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="periodic spatial domain"):
        teng("heat", net)
    with pytest.raises(ConfigError, match="time first"):
        teng(build_problem("poisson"), net)


def test_pinn_teng_cli_records_the_run_and_the_errors_it_printed(tmp_path, capsys):
    import json

    from trainlab.cli import main
    from trainlab.store import RunStore

    argv = ["pinn", "teng", "--store", str(tmp_path), "--scheme", "euler", "--dt", "0.05",
            "--points", "8", "--width", "6", "--depth", "2", "--initial-iterations", "20",
            "--iterations", "2", "--first-iterations", "2", "-p", "horizon=0.1",
            "-p", "grid_t=3", "-p", "grid_x=4", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    direct = teng("heat-2d", scheme="euler", dt=0.05, points=8, width=6, depth=2,
                  initial_iterations=20, iterations=2, first_iterations=2,
                  generator=torch.Generator().manual_seed(0), horizon=0.1, grid_t=3, grid_x=4)
    assert out["space_time_rel_l2"] == direct.space_time_rel_l2  # same seed, same numbers
    with RunStore(tmp_path) as store:
        run = store.get_run(out["run_id"])
        assert run.status == "completed" and run.config["kind"] == "pinn-teng"
        steps, values = store.metrics(run.id, ["error/rel_l2"])["error/rel_l2"]
        assert list(values) == direct.rel_l2 and len(steps) == 3
        assert "TENG-euler" in store.artifact(run.id, "report").read_text()
    assert main(["pinn", "teng", "--store", str(tmp_path), "--problem", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "nope" in err and "\n" not in err
    assert main(["pinn", "teng", "--store", str(tmp_path), "--scheme", "rk4"]) == 2
    assert "'scheme'" in capsys.readouterr().err
    assert main(["pinn", "teng", "--store", str(tmp_path), "--damping", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'damping'" in err and "stage" in err and "\n" not in err
    # the fit options reach teng: per-stage damping and the stall rule, same numbers
    assert main(argv[:-1] + ["--damping", "stage", "--stall", "0.01", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    direct = teng("heat-2d", scheme="euler", dt=0.05, points=8, width=6, depth=2,
                  initial_iterations=20, iterations=2, first_iterations=2, damping="stage",
                  stall=0.01, generator=torch.Generator().manual_seed(0), horizon=0.1,
                  grid_t=3, grid_x=4)
    assert out["space_time_rel_l2"] == direct.space_time_rel_l2


def test_damped_fit_is_nielsens_levenberg_marquardt_reusing_normal_equations(monkeypatch):
    import trainlab.pinn.chen2024_teng as teng_module
    from trainlab.optim.engd import damped_direction, output_jacobian

    def network():
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()

    x = _quadrature(6)
    target = torch.sin(x[:, 0]) * torch.cos(2 * x[:, 1])
    # reference: the plain loop that forms J and J^T J at every iteration
    ref, nu, grow = network(), 1e-6, 2.0
    params = lambda net: {n: p.detach() for n, p in net.named_parameters()}  # noqa: E731
    flat = lambda net: torch.nn.utils.parameters_to_vector(net.parameters()).detach()  # noqa: E731
    res = ref(x)[:, 0].detach() - target
    accepted = 0
    for _ in range(12):
        jac = output_jacobian(ref, params(ref), x)[:, 0, :]
        before = flat(ref)
        step, _ = damped_direction(jac, res, nu)
        torch.nn.utils.vector_to_parameters(before - step, ref.parameters())
        new = ref(x)[:, 0].detach() - target
        # Nielsen's gain ratio, from J itself: actual over predicted decrease of |r|^2
        predicted = float(res @ res) - float((res - jac @ step).pow(2).sum())
        gain = float(res @ res - new @ new) / predicted
        if gain > 0:
            res, accepted = new, accepted + 1
            nu, grow = max(nu * max(1 / 3, 1 - (2 * gain - 1) ** 3), 1e-12), 2.0
        else:
            torch.nn.utils.vector_to_parameters(before, ref.parameters())
            nu, grow = min(nu * grow, 1e8), 2 * grow
    calls = []

    def counting(*args):
        calls.append(1)
        return output_jacobian(*args)

    monkeypatch.setattr(teng_module, "output_jacobian", counting)
    net, state = network(), {"nu": 1e-6}
    out = natural_gradient_fit(net, x, target, 12, state=state)
    assert out == pytest.approx(float(res.norm() / target.norm()), rel=1e-9)
    torch.testing.assert_close(flat(net), flat(ref), rtol=1e-9, atol=1e-12)
    assert state["nu"] == pytest.approx(nu, rel=1e-9)
    assert accepted <= len(calls) <= accepted + 1 < 12  # one J per accepted point, not 12


def test_heat2d_time_error_is_the_closed_form_per_mode_and_has_the_schemes_order():
    from trainlab.pinn.chen2024_teng import heat2d_time_error

    # one mode: |R^k - exp(-z k)| summed over the times, by hand
    dt, z = 0.1, 0.1 * 2 * 0.1
    times = [0.0, 0.5, 1.0]
    for scheme, factor in (("euler", 1 - z), ("heun", 1 - z + z * z / 2)):
        num = sum((factor ** round(t / dt) - math.exp(-z * t / dt)) ** 2 for t in times)
        den = sum(math.exp(-2 * z * t / dt) for t in times)
        got = heat2d_time_error(scheme, dt, modes=1, grid_t=3)
        assert got == pytest.approx(math.sqrt(num / den), rel=1e-12)
    # Euler is first order, Heun second: halving dt halves / quarters the error
    for scheme, order in (("euler", 1), ("heun", 2)):
        ratio = heat2d_time_error(scheme, 0.02) / heat2d_time_error(scheme, 0.01)
        assert ratio == pytest.approx(2 ** order, rel=0.05)
    # the numbers the benchmark's dt = 0.05 runs sit at (TENG-Heun measured 2.0e-4)
    assert heat2d_time_error("heun", 0.05) == pytest.approx(1.84e-4, rel=0.01)
    assert heat2d_time_error("euler", 0.05) == pytest.approx(4.92e-3, rel=0.01)
    assert heat2d_time_error("heun", 0.01) == pytest.approx(6.57e-6, rel=0.01)
    with pytest.raises(ConfigError, match="multiples of dt"):
        heat2d_time_error("heun", 0.015)


def test_the_initial_fit_reaches_4e_5_on_a_small_heat_case():
    from trainlab.pinn.chen2024_teng import fit_initial, teng_network
    from trainlab.pinn.problems.heat2d import heat2d_initial

    net = teng_network((2 * math.pi, 2 * math.pi), 12, 4, torch.Generator().manual_seed(0))
    x = _quadrature(16)
    u0 = heat2d_initial(torch.cat([torch.zeros(len(x), 1, dtype=x.dtype), x], 1), 0.3)[:, 0]
    res = fit_initial(net, x, u0, 300)
    with torch.no_grad():
        direct = float((net(x)[:, 0] - u0).norm() / u0.norm())
    assert res == pytest.approx(direct, rel=1e-9)
    # the keep-if-lower damping rule used before reached 2.5e-4 here
    assert res < 4e-5


def test_damped_fit_with_the_blocked_gram_equals_the_full_product(monkeypatch):
    import trainlab.pinn.chen2024_teng as teng_module

    x = _quadrature(8)
    target = torch.sin(x[:, 0]) * torch.cos(2 * x[:, 1])
    nets = []
    for gram in (teng_module.gram_matrix, lambda jac: jac.T @ jac):
        monkeypatch.setattr(teng_module, "gram_matrix", gram)
        net = teng_module.teng_network((2 * math.pi, 2 * math.pi), 8, 3,
                                       torch.Generator().manual_seed(1))
        natural_gradient_fit(net, x, target, 6, state={"nu": 1e-6})
        nets.append(torch.nn.utils.parameters_to_vector(net.parameters()).detach())
    assert not torch.equal(nets[0], teng_module._flat(teng_module.teng_network(
        (2 * math.pi, 2 * math.pi), 8, 3, torch.Generator().manual_seed(1))))  # it moved
    torch.testing.assert_close(nets[0], nets[1], rtol=1e-10, atol=1e-12)


def test_the_stall_rule_stops_a_fit_at_the_exact_least_squares_solution():
    # a model linear in its parameters: the least-squares fit is known in closed form, the
    # residual of the exact fit is not zero (the target is outside the span), so once the
    # damped iterations reach it the residual stops falling and the rule ends the fit
    net = _linear_model(12)
    x = _quadrature(12)
    with torch.no_grad():
        phi = net[0](x)
    w = torch.randn(12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    target = phi @ w + 0.01 * torch.sin(x[:, 0]) * torch.cos(2 * x[:, 1])
    exact = torch.linalg.solve(phi.T @ phi, phi.T @ target)
    with torch.no_grad():
        before = float((net(x)[:, 0] - target).norm() / target.norm())
    hist, stall, window = [], 0.01, 4
    out = natural_gradient_fit(net, x, target, 50, state={"nu": 1e-6}, stall=stall,
                               history=hist)
    torch.testing.assert_close(net[1].weight.detach()[0], exact, rtol=1e-6, atol=1e-8)
    floor = float((phi @ exact - target).norm() / target.norm())
    assert out == pytest.approx(floor, rel=1e-9) and out == hist[-1]
    # it stopped early, at the first iteration where the rule holds, and not before
    h = [before, *hist]
    n = len(hist)
    assert window < n < 50, (n, h)
    assert h[n] > (1 - stall) * h[n - window]
    assert all(h[m] <= (1 - stall) * h[m - window] for m in range(window, n))
    # without the rule: every iteration runs and the history has one entry per iteration
    hist2 = []
    natural_gradient_fit(_linear_model(12), x, target, 9, state={"nu": 1e-6}, history=hist2)
    assert len(hist2) == 9 and hist2[:n] == hist
    with pytest.raises(ConfigError, match="stall"):
        natural_gradient_fit(net, x, target, 3, stall=1.5)


def test_teng_with_the_stall_rule_records_the_iterations_each_stage_ran():
    kwargs = dict(scheme="heun", dt=0.05, horizon=0.1, grid_t=3, grid_x=8, points=12,
                  width=8, depth=3, initial_iterations=100, iterations=30,
                  first_iterations=30, r=0.3)
    res = teng("heat-2d", generator=torch.Generator().manual_seed(0), stall=0.05, **kwargs)
    assert len(res.fit_iterations) == 2 and res.config["stall"] == 0.05
    assert all(len(c) == 2 and min(c) > 4 and max(c) < 30 for c in res.fit_iterations)
    fixed = teng("heat-2d", generator=torch.Generator().manual_seed(0), **kwargs)
    assert fixed.fit_iterations == [(30, 30), (30, 30)]
    assert res.space_time_rel_l2 == pytest.approx(fixed.space_time_rel_l2, rel=0.5)
    with pytest.raises(ConfigError, match="stall"):
        teng("heat-2d", stall=-1.0, **kwargs)


def test_per_stage_damping_keeps_one_state_per_heun_stage(monkeypatch):
    import trainlab.pinn.chen2024_teng as teng_module

    real = teng_module.natural_gradient_fit
    for damping, expected in (("carry", 1), ("stage", 2)):
        seen = []

        def recording(*args, state=None, _seen=seen, **kwargs):
            _seen.append(state)
            return real(*args, state=state, **kwargs)

        monkeypatch.setattr(teng_module, "natural_gradient_fit", recording)
        res = teng("heat-2d", scheme="heun", dt=0.05, horizon=0.1, grid_t=3, grid_x=8,
                   points=8, width=6, depth=3, initial_iterations=20, iterations=2,
                   first_iterations=2, damping=damping, r=0.3,
                   generator=torch.Generator().manual_seed(0))
        fits = seen[-4:]  # 2 steps x 2 stages, after the initial fit's calls
        assert fits[0] is fits[2] and fits[1] is fits[3]  # carried from step to step
        assert len({id(s) for s in fits}) == expected
        assert res.config["damping"] == damping and "nu" in fits[1]
    with pytest.raises(ConfigError, match="damping"):
        teng("heat-2d", damping="nope", horizon=0.1, grid_t=3)
