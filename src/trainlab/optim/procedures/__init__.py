"""Training procedures that are not a per-step optimizer: hypergradients and the like."""

from trainlab.optim.procedures.feedback_alignment import FeedbackAlignment, feedback_linear
from trainlab.optim.procedures.ift_hypergradient import Hypergradient, ift_hypergradient

__all__ = ["FeedbackAlignment", "Hypergradient", "feedback_linear", "ift_hypergradient"]
