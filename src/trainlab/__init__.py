"""trainlab: choose, watch, explain and reproduce the initial conditions and gradient
dynamics of neural-network training."""

__version__ = "0.1.0"
