"""Multi-pass optimizers that follow the closure contract (trainlab.optim.closure)."""
