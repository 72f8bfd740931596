"""The random-coefficient Poisson family, PCG, the classical preconditioners and the learned
solvers of papers.md rows 59 and 108."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import LinearOperator, cg, spsolve

from trainlab.errors import ConfigError, UnknownNameError
from trainlab.pinn.solvers import SOLVERS, PoissonFamily, build_solver, pcg
from trainlab.pinn.solvers import classical as C
from trainlab.pinn.solvers import kaneda2023_dcdm as D
from trainlab.pinn.solvers import leboudec2025_neural_solver as LB
from trainlab.pinn.solvers import li2023_neural_pcg as N
from trainlab.pinn.solvers.poisson_family import assemble, nodes

PI = math.pi


def _a(x, y):
    return 1.0 + 0.5 * np.sin(2 * PI * x) * np.cos(PI * y)


def _u(x, y):
    return np.sin(PI * x) * np.sin(2 * PI * y)


def _f(x, y):
    """-div(a grad u) by hand for the manufactured pair above."""
    ux = PI * np.cos(PI * x) * np.sin(2 * PI * y)
    uy = 2 * PI * np.sin(PI * x) * np.cos(2 * PI * y)
    ax = PI * np.cos(2 * PI * x) * np.cos(PI * y)
    ay = -0.5 * PI * np.sin(2 * PI * x) * np.sin(PI * y)
    return -(ax * ux + ay * uy - 5 * PI**2 * _a(x, y) * _u(x, y))


def test_discretisation_converges_at_second_order():
    errors = []
    for n in (15, 31, 63):
        x, y = nodes(n)
        uh = spsolve(assemble(_a, n).tocsc(), _f(x, y).ravel())
        errors.append(np.abs(uh - _u(x, y).ravel()).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - 2.0) < 0.1), (errors, orders)
    assert errors[-1] < 1e-3


def test_family_is_spd_deterministic_and_splits_disjoint():
    fam = PoissonFamily(n=8, seed=3)
    for kind in ("lognormal", "piecewise"):
        f = PoissonFamily(n=8, kind=kind, seed=3)
        A = f.train(1)[0].A.toarray()
        assert np.allclose(A, A.T) and np.linalg.eigvalsh(A).min() > 0
    state = torch.get_rng_state()
    a, b = fam.train(2), PoissonFamily(n=8, seed=3).train(2)
    assert torch.equal(state, torch.get_rng_state())            # global RNG untouched
    assert all((x.A != y.A).nnz == 0 and np.array_equal(x.b, y.b) for x, y in zip(a, b))
    assert {i.seed for i in fam.train(5)}.isdisjoint(i.seed for i in fam.test(5))
    inst = fam.test(1)[0]
    assert np.allclose(inst.A @ inst.x, inst.b)
    assert not np.allclose(fam.train(1)[0].A.toarray(), inst.A.toarray())


def test_bad_family_and_solver_names_raise_one_line_errors():
    with pytest.raises(ConfigError, match="'n'"):
        PoissonFamily(n=0)
    with pytest.raises(ConfigError, match="lognormal"):
        PoissonFamily(kind="gaussian")
    with pytest.raises(UnknownNameError, match="jacobi"):
        build_solver("jacoby")
    with pytest.raises(ConfigError, match="steps"):
        build_solver("neural-pcg", steps=-1)


@pytest.mark.parametrize("name", ["cg", "jacobi"])
def test_pcg_matches_scipy_cg(name):
    inst = PoissonFamily(n=16).train(1)[0]
    A, b = inst.A, inst.b
    M = getattr(C, {"cg": "none"}.get(name, name))(A)
    mine = pcg(A, b, M, rtol=1e-8)
    count = [0]
    op = None if M is None else LinearOperator(A.shape, matvec=M)
    x, info = cg(A, b, rtol=1e-8, atol=0.0, M=op, maxiter=5000,
                 callback=lambda _: count.__setitem__(0, count[0] + 1))
    assert info == 0 and mine.converged
    assert abs(mine.iterations - count[0]) <= 1
    assert np.linalg.norm(mine.x - x) <= 1e-7 * np.linalg.norm(x)
    assert np.linalg.norm(mine.x - inst.x) <= 1e-6 * np.linalg.norm(inst.x)
    assert mine.residuals[-1] <= 1e-8 < mine.residuals[-2]


def test_ic0_is_exact_cholesky_without_fill_and_matches_a_on_its_pattern():
    n = 30
    T = sp.diags([-np.ones(n - 1), 2.5 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1]).tocsr()
    L = C.ic0_factor(T).toarray()
    assert np.allclose(L, np.linalg.cholesky(T.toarray()), atol=1e-12)
    A = PoissonFamily(n=10).train(1)[0].A
    L = C.ic0_factor(A)
    R = (L @ L.T - A).toarray()
    pattern = A.toarray() != 0
    assert np.abs(R[pattern]).max() < 1e-10 * abs(A).max()
    assert np.abs(R[~pattern]).max() > 0                       # an incomplete factor
    z = C.ic0(A)(np.ones(A.shape[0]))
    assert np.allclose((L @ L.T) @ z, 1.0)


def test_preconditioners_rank_as_expected_on_the_family():
    inst = PoissonFamily(n=24).test(1)[0]
    its = {name: build_solver(name).solve(inst.A, inst.b).iterations
           for name in ("cg", "jacobi", "ic0", "amg")}
    assert its["amg"] < its["ic0"] < its["jacobi"] < its["cg"], its


def test_learned_factor_is_spd_by_construction_and_its_matvec_is_exact():
    A = PoissonFamily(n=6).train(1)[0].A
    solver = build_solver("neural-pcg", hidden=8, blocks=2)
    for seed in (0, 1):                                          # untrained, random weights
        N.init_weights(solver.model, torch.Generator().manual_seed(seed))
        L = solver.factor(A).toarray()
        assert np.allclose(L, np.tril(L)) and np.all(np.diag(L) > 0)
        assert set(zip(*np.nonzero(L))) <= set(zip(*np.nonzero(np.tril(A.toarray()))))
        P = L @ L.T
        assert np.allclose(P, P.T) and np.linalg.eigvalsh(P).min() > 0
    g = N.MatrixGraph(A)
    with torch.no_grad():
        diag, off = N.factor_values(solver.model, g)
    x = torch.randn(A.shape[0], 3, generator=torch.Generator().manual_seed(0),
                    dtype=torch.float64)
    L = N.factor_matrix(g, diag, off).toarray()
    assert np.allclose(N.factor_matvecs(g, diag, off, x).numpy(), L @ L.T @ x.numpy())


def test_tiny_neural_pcg_beats_plain_cg_on_held_out_coefficients():
    fam = PoissonFamily(n=16, seed=5)
    solver = build_solver("neural-pcg", hidden=16, blocks=3, steps=60, lr=3e-3)
    log = solver.fit(fam.train(4), generator=torch.Generator().manual_seed(0))
    assert log["loss"][-1] < 0.1 * log["loss"][0]
    for inst in fam.test(2):
        learned = solver.solve(inst.A, inst.b)
        plain = build_solver("cg").solve(inst.A, inst.b)
        assert learned.converged and np.allclose(learned.x, inst.x, rtol=1e-6, atol=1e-9)
        assert learned.iterations < 0.6 * plain.iterations


def test_dcdm_iteration_with_the_exact_inverse_converges_in_one_step():
    inst = PoissonFamily(n=8).train(1)[0]
    solver = build_solver("dcdm")
    Ad = inst.A.toarray()
    solver.direction = lambda r: np.linalg.solve(Ad, r)          # the ideal network
    res = solver.solve(inst.A, inst.b)
    assert res.converged and res.iterations == 1


def test_dcdm_iteration_with_the_identity_is_cg_and_with_an_spd_map_is_pcg():
    """Algorithm 1 with f = identity (resp. a fixed SPD M) and its two-direction
    A-orthogonalisation reproduces CG's (resp. PCG's) residuals: CG's next residual is
    already A-conjugate to every direction but the last."""
    for sigma in (0.0, 1.0):
        inst = PoissonFamily(n=8, sigma=sigma).train(1)[0]
        inv = 1.0 / inst.A.diagonal()
        jacobi = inv.__mul__                                       # r -> diag(A)^-1 r
        for direction, M in ((lambda r: r.copy(), None), (jacobi, jacobi)):
            solver = build_solver("dcdm")
            solver.direction = direction
            mine = solver.solve(inst.A, inst.b)
            ref = pcg(inst.A, inst.b, M)
            assert mine.converged and mine.iterations == ref.iterations
            np.testing.assert_allclose(mine.residuals[:15], ref.residuals[:15], rtol=1e-10)
            assert np.allclose(mine.x, inst.x, rtol=1e-6, atol=1e-9)


def test_dcdm_orthogonalize_sets_how_many_directions_are_conjugated():
    inst = PoissonFamily(n=4, sigma=1.0).train(1)[0]
    A, b = inst.A.toarray(), inst.b
    # 0: steepest descent along the direction map (here the residual itself)
    solver = build_solver("dcdm", orthogonalize=0)
    solver.direction = lambda r: r.copy()
    x, r, ref = np.zeros(16), b.copy(), [1.0]
    for _ in range(5):
        x = x + (r @ r) / (r @ A @ r) * r
        r = b - A @ x
        ref.append(np.linalg.norm(r) / np.linalg.norm(b))
    np.testing.assert_allclose(solver.solve(inst.A, b, maxiter=5).residuals, ref, rtol=1e-10)
    # full: conjugate directions from any fixed map end in at most N = 16 steps
    M = torch.randn(16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    full = build_solver("dcdm", orthogonalize=100)
    full.direction = lambda r: M.numpy() @ r
    res = full.solve(inst.A, b, maxiter=40)
    assert res.converged and res.iterations <= 17


def test_dcdm_trained_on_one_fixed_matrix_needs_fewer_iterations_than_cg():
    """The paper's setting, small: one Poisson matrix (a sigma = 0 family: every instance
    shares it, so the Ritz data are built once), held-out right-hand sides."""
    fam = PoissonFamily(n=12, sigma=0.0)
    solver = build_solver("dcdm", steps=120, lr=1e-3, ritz=64, samples=500)
    log = solver.fit(fam.train(3), generator=torch.Generator().manual_seed(0))
    assert log["matrices"] == 1 and log["loss"][-1] < 0.2 * log["loss"][0]
    learned, plain = [], []
    for inst in fam.test(3):
        res = solver.solve(inst.A, inst.b)
        assert res.converged and np.allclose(res.x, inst.x, rtol=1e-6, atol=1e-9)
        learned.append(res.iterations)
        plain.append(build_solver("cg").solve(inst.A, inst.b).iterations)
    assert np.mean(learned) < 0.8 * np.mean(plain)


def test_dcdm_initialisation_is_the_keras_default():
    solver = build_solver("dcdm", steps=0)
    solver.fit(PoissonFamily(n=8, sigma=0.0).train(1), generator=torch.Generator().manual_seed(0))
    for m in solver.model.modules():
        if isinstance(m, torch.nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            fan_out = m.out_channels * m.kernel_size[0] * m.kernel_size[1]
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = m.weight.detach().abs().max().item()
            assert m.bias.detach().abs().max().item() == 0.0 and 0.8 * limit < w <= limit


def test_dcdm_ritz_data_and_loss():
    A = PoissonFamily(n=8).train(1)[0].A
    vals, vecs = D.ritz_vectors(A, 64, torch.Generator().manual_seed(0))
    assert np.allclose(vals, np.linalg.eigvalsh(A.toarray()), rtol=1e-8)   # m = N: exact
    assert np.allclose(vecs @ vecs.T, np.eye(64), atol=1e-8)
    b = D.ritz_rhs(vecs, 5, 2, torch.Generator().manual_seed(1))
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0)
    At = D._torch_sparse(A, torch.float64)
    bt = torch.from_numpy(b.T)
    exact = torch.from_numpy(np.linalg.solve(A.toarray(), b.T))
    assert D.dcdm_loss(2.5 * exact, bt, At) < 1e-20                # scale-invariant, zero
    assert D.dcdm_loss(bt, bt, At) > 1e-3


def test_every_solver_entry_builds_and_solves():
    inst = PoissonFamily(n=8).test(1)[0]
    for entry in SOLVERS.entries():
        solver = build_solver(entry.name)
        assert solver.learned == entry.info.learned
        if not entry.info.learned and entry.info.family == "poisson-2d":
            res = solver.solve(inst.A, inst.b)
            assert res.converged and np.allclose(res.x, inst.x, rtol=1e-6, atol=1e-9)


def _cli(*argv):
    from trainlab.cli import main

    return main(list(argv))


@pytest.mark.parametrize("argv, needle", [
    (["--method", "nope"], "Unknown solver 'nope'"),
    (["--n", "0"], "'n' parameter"),
    (["--train", "0", "--n", "4"], "'train' parameter"),
    (["--baselines", "jacobi,foo"], "Unknown solver 'foo'"),
    (["-p", "steps"], "KEY=VALUE"),
    (["--sigma", "-1"], "'sigma' parameter"),
])
def test_pinn_solvers_bad_input_is_one_line_exit_2(argv, needle, tmp_path, capsys):
    assert _cli("pinn", "solvers", "--store", str(tmp_path), *argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_pinn_solvers_records_a_run_and_a_report(tmp_path, capsys):
    import json

    from trainlab.store import RunStore

    assert _cli("pinn", "solvers", "--store", str(tmp_path), "--n", "12", "--train", "2",
                "--test", "2", "--baselines", "jacobi", "-p", "steps=20", "-p", "hidden=8",
                "-p", "blocks=2", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["method"] for r in out["rows"]] == ["neural-pcg", "jacobi"]
    assert out["ratio_vs_jacobi"] > 0
    with RunStore(tmp_path) as store:
        run = store.get_run(out["run_id"])
        assert run.status == "completed" and run.config["kind"] == "pinn-solvers"
        assert run.summary["rows"] == out["rows"]
        assert len(store.metrics(run.id, ["train/loss"])["train/loss"][0]) == 20
        assert "Learned linear solver" in store.artifact(run.id, "report").read_text()


def test_helmholtz_quadratic_is_the_physics_loss_and_the_exact_solution_solves_the_ode():
    basis = LB.bspline_basis(32, points=128)
    params = LB.helmholtz_params(3, torch.Generator().manual_seed(0))
    theta = torch.randn(3, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    H, g = LB.quadratic(params, basis)
    u, u2 = theta @ basis["val"].T, theta @ basis["d2"].T
    dx = float(basis["x"][1] - basis["x"][0])
    w = params[:, :1]
    direct = (dx * ((u2 + w**2 * u) ** 2).sum(1)
              + 0.5 * ((theta @ basis["b0"] - params[:, 1]) ** 2
                       + (theta @ basis["d0"] - params[:, 2]) ** 2))
    c = 0.5 * (params[:, 1] ** 2 + params[:, 2] ** 2)
    quad = torch.einsum("bi,bij,bj->b", theta, H, theta) - 2 * (g * theta).sum(1) + c
    assert torch.allclose(direct, quad, rtol=1e-10)
    x = torch.linspace(0, 1, 2001, dtype=torch.float64)
    ue = LB.helmholtz_exact(params, x)
    h = float(x[1] - x[0])
    ode = (ue[:, 2:] - 2 * ue[:, 1:-1] + ue[:, :-2]) / h**2 + w**2 * ue[:, 1:-1]
    assert ode.abs().max() < 1e-3 * (w**2).max()
    assert torch.allclose(ue[:, 0], params[:, 1])
    # CG on the normal equations reaches the direct minimiser (the basis' error floor)
    th = LB.classical_iterates(params, torch.zeros(32, dtype=torch.float64), basis, 300, "cg")
    floor = LB.relative_error(torch.linalg.solve(H, g), params, basis)
    assert abs(LB.relative_error(th, params, basis) - floor) < 1e-3 and floor < 0.1


def test_tiny_learned_helmholtz_solver_beats_gd_and_cg_at_equal_steps():
    solver = LB.NeuralParametricSolver(basis=16, width=8, modes=4, layers=2, epochs=25,
                                       batch=16)
    c = LB.compare_helmholtz(solver, train=48, test=48, seed=0, classical_steps=(5,))
    assert c.training["loss"][-1] < 0.8 * c.training["loss"][0]
    assert c.error("learned", 5) < min(c.error("gd", 5), c.error("cg", 5))


def test_dcdm_coefficient_channel_option_feeds_the_diagonal():
    inst = PoissonFamily(n=8).test(1)[0]
    solver = build_solver("dcdm", coefficient_input=True)
    assert solver.model.first.in_channels == 2
    res = solver.solve(inst.A, inst.b, maxiter=3)
    assert res.iterations == 3 and not res.converged and len(res.residuals) == 4
    d = inst.A.diagonal()
    assert np.allclose(solver._channel.view(-1).numpy(), np.log(d / d.mean()), atol=1e-6)
    assert build_solver("dcdm").model.first.in_channels == 1
