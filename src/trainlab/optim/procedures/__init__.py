"""Training procedures that are not a per-step optimizer: hypergradients and the like."""

from trainlab.optim.procedures.feedback_alignment import FeedbackAlignment, feedback_linear
from trainlab.optim.procedures.gradient_boosting import BoostedHead, gradient_boost_head
from trainlab.optim.procedures.ift_hypergradient import Hypergradient, ift_hypergradient
from trainlab.optim.procedures.learners import Learner, gradient_learner, module_learner
from trainlab.optim.procedures.lipschitz_manifold import LipschitzManifold, knn_graph

__all__ = ["BoostedHead", "FeedbackAlignment", "Hypergradient", "Learner",
           "LipschitzManifold", "feedback_linear", "gradient_boost_head", "gradient_learner",
           "ift_hypergradient", "knn_graph", "module_learner"]
