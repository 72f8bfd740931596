"""A small ENGD PINN run shared by the pinn method tests."""

import torch

from trainlab.init import apply as apply_init
from trainlab.models import build_model
from trainlab.optim import build_optimizer
from trainlab.optim.loss_closure import make_closure


def train_engd(task, steps, width, depth=2, seed=0):
    """A tanh MLP (Xavier-normal, float64) wrapped for ``task``, after ``steps`` ENGD steps."""
    net = build_model("mlp", task.input_shape, task.num_outputs, depth=depth, width=width,
                      activation_name="tanh").double()
    model = task.build_network(net)
    apply_init(model, "xavier-normal", generator=torch.Generator().manual_seed(seed))
    opt = build_optimizer("engd", model.parameters(), lr=1.0)
    closure = make_closure(model, task.loss, task.x_train, task.y_train)
    for _ in range(steps):
        opt.step(closure)
    return model
