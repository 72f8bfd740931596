"""Model builders by name (``trainlab list models``) and reusable layers."""

from trainlab.models import (  # noqa: F401  (registration)
    cnn1d,
    gcn,
    icgn,
    inr,
    kernel_attention,
    lipschitz,
    lora,
    maxout,
    mlp,
    neural_ode,
    resnet,
    rnn,
    sorting_network,
    transformer,
)
from trainlab.models._registry import MODELS, build_model
from trainlab.models.activations import ACTIVATIONS, Sine, activation
from trainlab.models.cnn1d import CNN1d
from trainlab.models.ghost_batchnorm import GhostBatchNorm
from trainlab.models.icgn import ICGN
from trainlab.models.spectral_regularizer import SpectralRegularizer

__all__ = ["ACTIVATIONS", "CNN1d", "GhostBatchNorm", "ICGN", "MODELS", "Sine",
           "SpectralRegularizer", "activation", "build_model"]
