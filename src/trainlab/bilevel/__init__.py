"""Bilevel optimization: an outer objective at a solution of an inner problem, where the inner
start (cold or warm), the hypergradient and the handling of non-unique inner solutions decide
which solution gradient methods reach.

:data:`BILEVEL` registers the methods; each is a function
``method(problem, x0, y0, ...) -> BilevelRun`` on flat tensors.
"""

from trainlab.bilevel.hypergradients import (
    gradient_step,
    implicit_hypergradient,
    unroll,
    unrolled_hypergradient,
)
from trainlab.bilevel.kwon2024_penalty import penalty_bilevel, penalty_hypergradient
from trainlab.bilevel.liu2020_bda import aggregated_step, bda, bda_counterexample
from trainlab.bilevel.problem import BilevelProblem, BilevelRun
from trainlab.bilevel.vicol2022_warm_cold import bilevel_gd, cold_start_blo, warm_start_blo
from trainlab.registry import Registry

BILEVEL: Registry = Registry("bilevel")
BILEVEL.register("cold-start", cold_start_blo, papers=(60,),
                 summary="bilevel GD that re-initialises the inner variable every outer step")
BILEVEL.register("warm-start", warm_start_blo, papers=(60,),
                 summary="bilevel GD that continues the inner variable across outer steps")
BILEVEL.register("bda", bda, papers=(88,),
                 summary="bilevel descent aggregation: inner steps mix lower and upper gradients")
BILEVEL.register("penalty", penalty_bilevel, papers=(100,),
                 summary="first-order penalty method: grad of (l(x, sigma) - l(x, 0)) / sigma")

__all__ = ["BILEVEL", "BilevelProblem", "BilevelRun", "aggregated_step", "bda",
           "bda_counterexample", "bilevel_gd", "cold_start_blo", "gradient_step",
           "implicit_hypergradient", "penalty_bilevel", "penalty_hypergradient", "unroll",
           "unrolled_hypergradient", "warm_start_blo"]
