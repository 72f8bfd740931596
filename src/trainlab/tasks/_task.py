"""The :class:`Task` bundle (data, default model, loss, metrics) and the task registry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F

from trainlab.errors import ConfigError
from trainlab.registry import Registry


@dataclass
class Task:
    """A supervised learning problem.

    ``model_input_shape`` and ``wrap_model`` (both optional) let a task train a network
    through a wrapper: the trainer builds the network for inputs of ``model_input_shape`` and
    trains ``wrap_model(network)`` on ``x_train`` (PDE tasks, :mod:`trainlab.pinn.task`).

    ``kind`` decides the loss: ``"classification"`` uses mean cross-entropy and reports
    accuracy; ``"regression"`` uses half the mean squared error summed over outputs,
    ``0.5 * mean_i ||f(x_i) - y_i||^2`` (the convention of the deep-linear theory).
    ``z_loss > 0`` adds ``z_loss * mean(log^2 Z)`` to a classification loss, the output-logit
    regularizer of "Small-scale proxies for large-scale Transformer training instabilities"
    (Wortsman et al., 2023; papers.md row 98; their coefficient is 1e-4).
    """

    name: str
    kind: Literal["classification", "regression"]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_outputs: int
    default_model: str = "mlp"
    info: dict[str, Any] | None = None
    z_loss: float = 0.0
    model_input_shape: tuple[int, ...] | None = None
    wrap_model: Callable[[Any], Any] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input of the *network* (``model_input_shape`` when the task
        wraps the network, as PDE tasks do, else the shape of one training input)."""
        if self.model_input_shape is not None:
            return tuple(self.model_input_shape)
        return tuple(self.x_train.shape[1:])

    def build_network(self, net: Any) -> Any:
        """The model the trainer trains: ``wrap_model(net)`` when the task sets it (a PDE
        task turns the network into its residuals, :mod:`trainlab.pinn.model`), else
        ``net``."""
        return self.wrap_model(net) if self.wrap_model is not None else net

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.kind == "classification":
            ce = F.cross_entropy(outputs, targets)
            return ce + self.z_loss * z_loss(outputs) if self.z_loss else ce
        return 0.5 * (outputs - targets).pow(2).sum(dim=-1).mean()

    def residuals(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """For a regression task, the residual vector ``(N, outputs)`` with ``loss = 0.5 *
        ||residuals||^2`` (``(outputs - targets) / sqrt(N)``), what Gauss-Newton methods
        (``engd``) need; classification has none."""
        if self.kind != "regression":
            raise ConfigError(f"task {self.name!r} is {self.kind}: its loss is not least "
                              "squares, so it has no residuals (Gauss-Newton optimizers such "
                              "as engd need a regression or pinn-* task)")
        diff = (outputs - targets).reshape(len(outputs), -1)
        return diff / len(outputs) ** 0.5

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss, and accuracy for classification (tensors; no host sync here)."""
        out = {"loss": self.loss(outputs, targets)}
        if self.kind == "classification":
            out["accuracy"] = (outputs.argmax(dim=-1) == targets).to(outputs.dtype).mean()
        return out

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
           ) -> Task:
        """Cast float inputs/targets (integer labels keep their dtype)."""

        def cast(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return dataclasses.replace(self, x_train=cast(self.x_train), y_train=cast(self.y_train),
                                   x_test=cast(self.x_test), y_test=cast(self.y_test))


def z_loss(logits: torch.Tensor) -> torch.Tensor:
    r"""Mean over examples/positions of :math:`\log^2 Z`, :math:`Z = \sum_c e^{z_c}` (row 98)."""
    return torch.logsumexp(logits, dim=-1).pow(2).mean()


TASKS: Registry[Callable[..., Task]] = Registry("task")


def build_task(name: str, **params: Any) -> Task:
    """Build the registered task ``name`` with its parameters (data seeds included)."""
    factory = TASKS.get(name)
    try:
        return factory(**params)
    except TypeError as exc:
        raise ConfigError(f"task {name!r}: {exc}") from None
