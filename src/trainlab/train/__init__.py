"""Training: the run config, the Trainer, and the Monitor for your own loops."""

from trainlab.train.config import RunConfig, apply_overrides
from trainlab.train.data import BatchSampler
from trainlab.train.monitor import Monitor
from trainlab.train.stacked import StackedSequential, stack_parameters
from trainlab.train.trainer import RunResult, Trainer, train

__all__ = ["BatchSampler", "Monitor", "RunConfig", "RunResult", "StackedSequential", "Trainer",
           "apply_overrides", "stack_parameters", "train"]
