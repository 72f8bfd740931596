"""The adding problem: a long-range memory test for recurrent networks (Hochreiter &
Schmidhuber 1997; the pathological task of Pascanu, Mikolov & Bengio, ICML 2013, papers.md
row 31)."""

from __future__ import annotations

import torch

from trainlab.errors import check_range
from trainlab.tasks._task import TASKS, Task


def adding_problem(n: int, length: int, *, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` sequences of ``length`` steps with two channels: channel 0 holds U(0, 1) values,
    channel 1 marks two positions, one in the first half and one in the second half (uniform
    in each); the target is the sum of the two marked values (mean 1). Predicting the
    constant 1 gives mean squared error 1/6, the baseline a model must beat.

    Deviation: Hochreiter & Schmidhuber draw the first mark among the first ten steps and
    use values in [-1, 1]; this is the common modern variant (marks in each half, U(0, 1)).

    Returns:
        float32 inputs ``(n, length, 2)`` and targets ``(n, 1)``.

    Example:
        >>> x, y = adding_problem(4, 10, generator=torch.Generator().manual_seed(0))
        >>> tuple(x.shape), x[..., 1].sum(1).tolist()
        ((4, 10, 2), [2.0, 2.0, 2.0, 2.0])
    """
    check_range("n", n, low=1, owner="adding_problem")
    check_range("length", length, low=2, owner="adding_problem")
    values = torch.rand(n, length, generator=generator)
    marks = torch.zeros(n, length)
    first = torch.randint(0, length // 2, (n,), generator=generator)
    second = torch.randint(length // 2, length, (n,), generator=generator)
    marks[torch.arange(n), first] = 1.0
    marks[torch.arange(n), second] = 1.0
    return torch.stack([values, marks], dim=-1), (values * marks).sum(1, keepdim=True)


def adding(length: int = 50, n_train: int = 10000, n_test: int = 1000,
           data_seed: int = 0) -> Task:
    """The ``adding`` task: a fixed training and test set of :func:`adding_problem`
    sequences (generator seeded with ``data_seed``), regression with the default model
    ``"rnn"``.

    Deviations from the paper: the common modern variant of the adding problem (see
    :func:`adding_problem`); the defaults (length 50, 10000 training and 1000 test sequences) are
    this library's, not the paper's protocol (not re-read for this paragraph).
    """
    check_range("n_train", n_train, low=1, owner="adding")
    check_range("n_test", n_test, low=1, owner="adding")
    g = torch.Generator().manual_seed(data_seed)
    x_tr, y_tr = adding_problem(n_train, length, generator=g)
    x_te, y_te = adding_problem(n_test, length, generator=g)
    return Task("adding", "regression", x_tr, y_tr, x_te, y_te, num_outputs=1,
                default_model="rnn", info={"length": length, "baseline_mse": 1 / 6})


TASKS.register("adding", adding, papers=(31,),
               summary="adding problem: sum of two marked values in a long sequence (RNNs)")
