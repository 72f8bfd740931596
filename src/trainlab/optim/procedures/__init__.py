"""Training procedures that are not a per-step optimizer: hypergradients and the like."""

from trainlab.optim.procedures.feedback_alignment import FeedbackAlignment, feedback_linear
from trainlab.optim.procedures.ift_hypergradient import Hypergradient, ift_hypergradient
from trainlab.optim.procedures.learners import Learner, gradient_learner, module_learner

__all__ = ["FeedbackAlignment", "Hypergradient", "Learner", "feedback_linear",
           "gradient_learner", "ift_hypergradient", "module_learner"]
