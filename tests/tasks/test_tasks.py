import numpy as np
import pytest
import torch

from trainlab.errors import ConfigError
from trainlab.tasks import build_task


def test_mnist1d_shapes_cache_and_numpy_rng_untouched():
    np.random.seed(5)
    state = np.random.get_state()[1].copy()
    t = build_task("mnist1d", num_samples=600)
    assert np.array_equal(np.random.get_state()[1], state)
    assert t.x_train.shape == (480, 40) and t.x_test.shape == (120, 40)
    assert t.num_outputs == 10 and t.y_train.dtype == torch.long
    t2 = build_task("mnist1d", num_samples=600)  # from the cache
    assert torch.equal(t.x_train, t2.x_train)


def test_teacher_linear_is_whitened_and_has_the_spectrum():
    t = build_task("teacher-linear", in_dim=8, out_dim=6, singular_values="3,2,1", n_train=256)
    x = t.x_train.double()
    cov = x.T @ x / len(x)
    assert torch.allclose(cov, torch.eye(8, dtype=torch.float64), atol=1e-5)
    syx = t.y_train.double().T @ x / len(x)  # = W when inputs are white and noise-free
    sv = torch.linalg.svdvals(syx)
    assert torch.allclose(sv[:4], torch.tensor([3.0, 2.0, 1.0, 0.0], dtype=torch.float64),
                          atol=1e-4)
    with pytest.raises(ConfigError):
        build_task("teacher-linear", in_dim=2, out_dim=2, singular_values="1,2,3")


def test_modular_addition_labels_and_split():
    t = build_task("modular-addition", p=7, train_fraction=0.5)
    assert len(t.x_train) + len(t.x_test) == 49 and t.x_train.shape[1] == 14
    pairs = t.info["pairs_train"]
    assert torch.equal(t.y_train, (pairs[:, 0] + pairs[:, 1]) % 7)
    assert torch.equal(t.x_train[:, :7].argmax(1), pairs[:, 0])


def test_regression_loss_convention():
    t = build_task("teacher-linear", in_dim=4, out_dim=4, n_train=16, n_test=4)
    out, y = torch.ones(3, 4), torch.zeros(3, 4)
    assert t.loss(out, y).item() == pytest.approx(2.0)  # 0.5 * 4 per example


def test_z_loss_adds_the_squared_log_partition():
    t = build_task("modular-addition", p=5)
    logits, y = torch.randn(4, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    plain = t.loss(logits, y)
    t.z_loss = 1e-2
    expected = plain + 1e-2 * (torch.logsumexp(logits, -1) ** 2).mean()
    assert torch.allclose(t.loss(logits, y), expected)
