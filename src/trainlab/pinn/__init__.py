"""Physics-informed training: PDE/ODE problems with trusted references, PDE tasks for the
Trainer, soft and hard constraints, PDEBench metrics, input derivatives from torch.func."""

from trainlab.pinn.chalapathi2024_moe_hard import HardConstraintExperts
from trainlab.pinn.chen2024_teng import TengResult, teng
from trainlab.pinn.derivatives import Jet, jet
from trainlab.pinn.metrics import grid_metrics, pde_metrics
from trainlab.pinn.model import PinnModel
from trainlab.pinn.pdebench_io import PDEBenchData, read_pdebench
from trainlab.pinn.problems import PROBLEMS, Problem, Term, build_problem
from trainlab.pinn.task import PinnTask, pinn_task

__all__ = ["PROBLEMS", "HardConstraintExperts", "Jet", "PDEBenchData", "PinnModel", "PinnTask",
           "Problem", "TengResult", "Term", "build_problem", "grid_metrics", "jet", "pde_metrics",
           "pinn_task", "read_pdebench", "teng"]
