"""Gradient estimators: quantities that stand in for a backpropagated gradient."""

from trainlab.optim.estimators.feature_gradients import feature_gradients
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
from trainlab.registry import Registry

ESTIMATORS: Registry = Registry("estimator")
ESTIMATORS.register("forward-gradient", forward_gradient, papers=(21,),
                    summary="unbiased gradient from one JVP along a random direction")
ESTIMATORS.register("model-forward-gradient", model_forward_gradient, papers=(21, 9),
                    summary="forward gradient of a model's loss, random or guessed directions")
ESTIMATORS.register("local-loss-guess", LocalLossGuess, papers=(9,),
                    summary="guess directions for forward gradients from local auxiliary losses")
ESTIMATORS.register("straight-through", straight_through, papers=(97,),
                    summary="straight-through gradient of a categorical sample")
ESTIMATORS.register("reinmax", reinmax, papers=(97,),
                    summary="ReinMax second-order gradient of a categorical sample")
ESTIMATORS.register("knn-gradient", knn_gradient, papers=(67,),
                    summary="k-nearest-neighbour local-linear gradient of a regression function")
ESTIMATORS.register("kernel-gradient", kernel_gradient, papers=(72,),
                    summary="Gaussian-process (kernel) gradient estimate, as in OptEx")
ESTIMATORS.register("weight-perturbation", weight_perturbation, papers=(103,),
                    summary="gradient estimate from random weight perturbations")
ESTIMATORS.register("feature-gradients", feature_gradients, papers=(78,),
                    summary="feature selection by gradient descent on a relaxed mask, "
                            "scored by a sublinear learnability estimate")
ESTIMATORS.register("node-perturbation", node_perturbation, papers=(103,),
                    summary="gradient estimate from random perturbations of unit outputs")

__all__ = ["ESTIMATORS", "ForwardGradient", "LocalGuesses", "LocalLossGuess", "feature_gradients",
           "forward_gradient",
           "kernel_gradient", "knn_gradient", "model_forward_gradient", "node_perturbation",
           "reinmax", "straight_through", "weight_perturbation"]
