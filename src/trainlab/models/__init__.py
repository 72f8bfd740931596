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
    rnn,
    transformer,
)
from trainlab.models._registry import MODELS, build_model
from trainlab.models.activations import ACTIVATIONS, Sine, activation
from trainlab.models.cnn1d import CNN1d
from trainlab.models.ghost_batchnorm import GhostBatchNorm

__all__ = ["ACTIVATIONS", "CNN1d", "GhostBatchNorm", "MODELS", "Sine", "activation", "build_model"]
