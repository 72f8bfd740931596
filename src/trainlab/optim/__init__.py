"""Optimizers (drop-in ``torch.optim.Optimizer`` classes), schedules and gradient transforms."""

from trainlab.optim import torch_builtin, transforms  # noqa: F401  (registration)
from trainlab.optim._registry import OPTIMIZERS, build_optimizer
from trainlab.optim.ademamix import AdEMAMix
from trainlab.optim.clipped_sgd import clipped_sgd
from trainlab.optim.diffgrad import DiffGrad
from trainlab.optim.dog import DoG
from trainlab.optim.gd import GradientDescent
from trainlab.optim.gravity import Gravity
from trainlab.optim.grokfast import grokfast_adamw, grokfast_ma_adamw
from trainlab.optim.optimistic_amsgrad import OptimisticAMSGrad
from trainlab.optim.riemannian_adam import RiemannianAdam
from trainlab.optim.schedules import SCHEDULES, ScheduleLR, build_schedule
from trainlab.optim.transforms import TRANSFORMS, TransformOptimizer
from trainlab.optim.xgrad import XGrad

__all__ = ["OPTIMIZERS", "SCHEDULES", "TRANSFORMS", "AdEMAMix", "DiffGrad", "DoG",
           "GradientDescent", "Gravity", "OptimisticAMSGrad", "RiemannianAdam", "ScheduleLR",
           "TransformOptimizer", "XGrad", "build_optimizer", "build_schedule", "clipped_sgd",
           "grokfast_adamw", "grokfast_ma_adamw", "transforms"]
from trainlab.optim import entropy_sgd, gam, gradient_regularization, natural_gradient, psgd, saddle_free_newton, sam  # noqa  (issue 6)
from trainlab.optim import aepg, dasa, induced_metric, optex, polynomial_preconditioning, regularized_newton  # noqa  (issue 6, part 2)
from trainlab.optim import lbfgs  # noqa: E402,F401  (issue 5, part 2)
from trainlab.optim import svrg  # noqa: E402,F401  (issue 5, part 2)
from trainlab.optim import classp  # noqa: E402,F401  (issue 5, part 2)
from trainlab.optim import grades  # noqa: E402,F401  (issue 5, part 2)
from trainlab.optim import stochastic_agd  # noqa: E402,F401  (issue 5, part 2)
