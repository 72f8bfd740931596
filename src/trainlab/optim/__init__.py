"""Optimizers (drop-in ``torch.optim.Optimizer`` classes), schedules and gradient transforms.

Importing this package registers every optimizer in :data:`OPTIMIZERS` (``trainlab list
optimizers``); multi-pass methods follow the one closure contract of
:mod:`trainlab.optim.closure`.
"""

from trainlab.optim import (  # noqa: F401  (each module registers its optimizers)
    aepg,
    classp,
    dasa,
    engd,
    entropy_sgd,
    gam,
    grades,
    gradient_regularization,
    induced_metric,
    layca,
    lbfgs,
    natural_gradient,
    optex,
    polynomial_preconditioning,
    psgd,
    psgd_lra,
    regularized_newton,
    saddle_free_newton,
    sam,
    stochastic_agd,
    svrg,
    torch_builtin,
    transforms,
    udog,
)
from trainlab.optim._registry import OPTIMIZERS, OptimizerInfo, build_optimizer, optimizer_info
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
           "GradientDescent", "Gravity", "OptimisticAMSGrad", "OptimizerInfo", "RiemannianAdam",
           "ScheduleLR", "TransformOptimizer", "XGrad", "build_optimizer", "build_schedule",
           "clipped_sgd", "grokfast_adamw", "grokfast_ma_adamw", "optimizer_info", "transforms"]
