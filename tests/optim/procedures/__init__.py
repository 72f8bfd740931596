"""Training procedures (trainlab.optim.procedures)."""
