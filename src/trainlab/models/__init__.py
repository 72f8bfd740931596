"""Model builders by name: MLP, deep linear network, 1-D CNN."""

from trainlab.models import (  # noqa: F401  (registration)
    cnn1d,
    gcn,
    inr,
    lipschitz,
    lora,
    maxout,
    mlp,
    resnet,
    transformer,
)
from trainlab.models._registry import MODELS, build_model
from trainlab.models.activations import ACTIVATIONS, Sine, activation
from trainlab.models.cnn1d import CNN1d

__all__ = ["ACTIVATIONS", "CNN1d", "MODELS", "Sine", "activation", "build_model"]
