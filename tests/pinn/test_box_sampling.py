"""The ``sampling="uniform"|"sobol"`` choice of every box-domain PINN problem: points inside
the box and on the right faces, reproducible from the generator, the global RNG untouched,
the default points those of the plain uniform formula, Sobol points stratified, and bad
values refused in one line (exit 2 from the CLI)."""

import inspect

import pytest
import torch

from trainlab.cli import main
from trainlab.errors import ConfigError
from trainlab.pinn.problems import PROBLEMS, build_problem
from trainlab.tasks import build_task

# the problems with the choice, cheap to build (the references are not evaluated here)
BOX = {"advection": {}, "advection-lagrangian": {}, "allen-cahn": {"grid_x": 8, "grid_t": 3},
       "burgers": {"grid_x": 8, "grid_t": 3}, "heat": {}, "heat-2d": {"grid_x": 4, "grid_t": 3},
       "kovasznay": {}, "level-set-circle": {"grid_x": 5, "grid_t": 3}, "poisson": {}}
# where each non-interior term lives: ("faces", dims) or ("slice", dim, value)
WHERE = {("advection", "boundary"): ("slice", 1, 0.0), ("advection", "initial"): ("slice", 0, 0.0),
         ("advection-lagrangian", "initial"): ("slice", 0, 0.0),
         ("allen-cahn", "initial"): ("slice", 0, 0.0),
         ("burgers", "boundary"): ("faces", (1,)), ("burgers", "initial"): ("slice", 0, 0.0),
         ("heat", "boundary"): ("faces", (1,)), ("heat", "initial"): ("slice", 0, 0.0),
         ("heat-2d", "initial"): ("slice", 0, 0.0),
         ("kovasznay", "boundary"): ("faces", (0, 1)),
         ("level-set-circle", "initial"): ("slice", 0, 0.0),
         ("poisson", "boundary"): ("faces", (0, 1))}
CASES = [(name, s) for name in sorted(BOX) for s in ("uniform", "sobol")]
N = 256


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_every_problem_with_a_sampling_choice_is_covered():
    offered = {n for n in PROBLEMS.names()
               if "sampling" in inspect.signature(PROBLEMS.get(n)).parameters}
    assert offered == set(BOX)
    assert {(n, t.name) for n in BOX for t in build_problem(n, **BOX[n]).terms
            if t.name != "pde"} == set(WHERE)


def _check_where(x, lo, hi, where):
    assert bool(((x >= lo) & (x <= hi)).all())
    if where is None:  # interior: strictly inside for these counts (probability one)
        assert bool(((x > lo) & (x < hi)).all())
    elif where[0] == "slice":
        assert bool((x[:, where[1]] == where[2]).all())
    else:  # on a face normal to one of dims, every face reached
        dims = list(where[1])
        on_lo, on_hi = x[:, dims] == lo[dims], x[:, dims] == hi[dims]
        assert bool((on_lo | on_hi).any(1).all())
        assert bool(on_lo.any(0).all() and on_hi.any(0).all())


@pytest.mark.parametrize("name, sampling", CASES)
def test_points_lie_on_their_sets_and_come_from_the_generator_only(name, sampling):
    p = build_problem(name, sampling=sampling, **BOX[name])
    assert p.params["sampling"] == sampling
    lo = torch.tensor(p.lower, dtype=torch.float64)
    hi = torch.tensor(p.upper, dtype=torch.float64)
    for term in p.terms:
        state = torch.get_rng_state()
        x = term.sample(N, _gen(3))
        assert torch.equal(torch.get_rng_state(), state), term.name
        assert x.shape == (N, p.dim) and x.dtype == torch.float64
        _check_where(x, lo, hi, WHERE.get((name, term.name)))
        assert torch.equal(x, term.sample(N, _gen(3)))
        assert not torch.equal(x, term.sample(N, _gen(4)))


def _free_columns(name, term, d):
    """The coordinates a term's sampler leaves as drawn (not set to a face or slice)."""
    where = WHERE.get((name, term))
    if where is None:
        return list(range(d))
    fixed = [where[1]] if where[0] == "slice" else list(where[1])
    return [i for i in range(d) if i not in fixed]


@pytest.mark.parametrize("name", sorted(BOX))
def test_default_points_are_the_plain_uniform_formula(name):
    """Default and ``sampling="uniform"`` give ``lo + (hi - lo) * rand(n, d)`` from the
    generator (the points before the choice existed), up to the coordinate a boundary or
    initial term sets."""
    default, uniform = build_problem(name, **BOX[name]), build_problem(
        name, sampling="uniform", **BOX[name])
    lo = torch.tensor(default.lower, dtype=torch.float64)
    hi = torch.tensor(default.upper, dtype=torch.float64)
    plain = lo + (hi - lo) * torch.rand(N, default.dim, generator=_gen(9), dtype=torch.float64)
    for term, other in zip(default.terms, uniform.terms):
        x = term.sample(N, _gen(9))
        assert torch.equal(x, other.sample(N, _gen(9)))
        free = _free_columns(name, term.name, default.dim)
        if WHERE.get((name, term.name), ("",))[0] == "faces" and len(free) < default.dim - 1:
            # two face directions: each row keeps all but the one coordinate it set
            assert bool(((x == plain).sum(1) >= default.dim - 1).all())
        else:
            assert torch.equal(x[:, free], plain[:, free]), term.name


@pytest.mark.parametrize("name", sorted(BOX))
def test_sobol_points_are_stratified_in_every_free_coordinate(name):
    """256 scrambled Sobol points put exactly one point in each 1/256 of every coordinate
    they leave free (each coordinate of a Sobol net is a (0, 8, 1)-net); the uniform points
    of the same generator do not."""
    sobol = build_problem(name, sampling="sobol", **BOX[name])
    uniform = build_problem(name, **BOX[name])
    lo, hi = sobol.lower, sobol.upper
    for term, plain in zip(sobol.terms, uniform.terms):
        free = _free_columns(name, term.name, sobol.dim)
        assert free or WHERE[(name, term.name)] == ("faces", (0, 1))  # a 2D box's boundary
        for x, stratified in ((term.sample(N, _gen(5)), True),
                              (plain.sample(N, _gen(5)), False)):
            for i in free:
                cell = ((x[:, i] - lo[i]) / (hi[i] - lo[i]) * N).long()
                full = torch.equal(torch.bincount(cell, minlength=N), torch.ones(N).long())
                assert full == stratified, (term.name, i, stratified)


@pytest.mark.parametrize("name", sorted(BOX))
def test_a_bad_sampling_is_a_one_line_error_naming_the_choices(name):
    with pytest.raises(ConfigError, match="'sampling'.*'uniform', 'sobol'") as err:
        build_problem(name, sampling="halton", **BOX[name])
    assert "\n" not in str(err.value)


def test_the_task_factory_passes_the_choice_and_the_cli_refuses_a_bad_one(tmp_path, capsys):
    params = {"n_interior": N, "n_boundary": 8, "n_initial": 8, "grid_points": 5}
    task = build_task("pinn-heat", sampling="sobol", data_seed=2, **params)
    assert task.info["params"]["sampling"] == "sobol"
    direct = build_problem("heat", sampling="sobol", **params).term("pde")
    interior = task.x_train[task.x_train[:, -1] == 0, :2]
    assert torch.equal(interior, direct.sample(N, _gen(2)))
    assert not torch.equal(interior, build_task("pinn-heat", data_seed=2, **params).x_train[:N, :2])
    argv = ["run", "--store", str(tmp_path), "--task", "pinn-heat", "-p", "task.sampling=halton",
            "-p", "task.grid_points=5", "--model", "mlp", "--steps", "1", "--probes", "none",
            "-q", "--no-report"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'uniform', 'sobol'" in err, err
