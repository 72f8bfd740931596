"""Gradient estimators (trainlab.optim.estimators)."""
