"""Gradient estimators: quantities that stand in for a backpropagated gradient."""

from trainlab.optim.estimators.forward_gradient import (
    ForwardGradient,
    forward_gradient,
    model_forward_gradient,
)
from trainlab.optim.estimators.kernel_gradient import kernel_gradient
from trainlab.optim.estimators.knn_gradient import knn_gradient
from trainlab.optim.estimators.local_loss_guess import LocalGuesses, LocalLossGuess
from trainlab.optim.estimators.perturbation import node_perturbation, weight_perturbation
from trainlab.optim.estimators.straight_through import reinmax, straight_through

__all__ = ["ForwardGradient", "LocalGuesses", "LocalLossGuess", "forward_gradient",
           "kernel_gradient", "knn_gradient", "model_forward_gradient", "node_perturbation",
           "reinmax", "straight_through", "weight_perturbation"]
