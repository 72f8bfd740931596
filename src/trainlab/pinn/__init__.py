"""Physics-informed training: problems with trusted references, PDE tasks, metrics."""
