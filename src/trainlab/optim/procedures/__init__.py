"""Training procedures that are not a per-step optimizer: hypergradients and the like."""

from trainlab.optim.procedures.ift_hypergradient import Hypergradient, ift_hypergradient

__all__ = ["Hypergradient", "ift_hypergradient"]
