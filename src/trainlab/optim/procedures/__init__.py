"""Training procedures that are not a per-step optimizer: hypergradients and the like."""

from trainlab.optim.procedures.aligned_mtl import aligned_mtl_gradients
from trainlab.optim.procedures.botros2021_g3_trajectory import plan_g3_trajectory
from trainlab.optim.procedures.dproxsgt import dproxsgt
from trainlab.optim.procedures.feedback_alignment import FeedbackAlignment, feedback_linear
from trainlab.optim.procedures.gradient_boosting import BoostedHead, gradient_boost_head
from trainlab.optim.procedures.gradient_sign_masking import transport_task_vector
from trainlab.optim.procedures.hamdouche2023_exit_control import actor_critic
from trainlab.optim.procedures.ift_hypergradient import Hypergradient, ift_hypergradient
from trainlab.optim.procedures.kostic2024_dpnets import fit_dpnets
from trainlab.optim.procedures.lange2023_es_lottery import es_lottery
from trainlab.optim.procedures.learners import Learner, gradient_learner, module_learner
from trainlab.optim.procedures.lipschitz_manifold import LipschitzManifold, knn_graph
from trainlab.optim.procedures.model_based import stochastic_model_based
from trainlab.optim.procedures.proximal_sampler import proximal_sampler
from trainlab.optim.procedures.regime_adaptation import adapt_regime
from trainlab.registry import Registry

PROCEDURES: Registry = Registry("procedure")
PROCEDURES.register("feedback-alignment", FeedbackAlignment, papers=(103,),
                    summary="train with fixed random feedback matrices instead of W^T")
PROCEDURES.register("gradient-boosting", gradient_boost_head, papers=(41,),
                    summary="fit the last layers as an additive gradient-boosted expansion")
PROCEDURES.register("ift-hypergradient", ift_hypergradient, papers=(54,),
                    summary="hypergradients by the implicit function theorem, Neumann inverse")
PROCEDURES.register("dpnets", fit_dpnets, papers=(112,),
                    summary="DPNets: learn transfer-operator features by a relaxed VAMP score")
PROCEDURES.register("proximal-sampler", proximal_sampler, papers=(109,),
                    summary="proximal sampler for exp(-V) with an exact rejection oracle")
PROCEDURES.register("es-lottery", es_lottery, papers=(81,),
                    summary="Sep-CMA-ES with iterative signal-to-noise pruning and rewinding")
PROCEDURES.register("exit-time-actor-critic", actor_critic, papers=(90,),
                    summary="actor-critic with Gaussian policies for control with an exit time")
PROCEDURES.register("learner", Learner, papers=(118,),
                    summary="compositional learners: parametrised maps with update rules")
PROCEDURES.register("lipschitz-manifold", LipschitzManifold, papers=(52,),
                    summary="Lipschitz-constrained learning on a manifold sample graph")
PROCEDURES.register("aligned-mtl", aligned_mtl_gradients, papers=(51,),
                    summary="Aligned-MTL: combine task gradients with condition number 1")
PROCEDURES.register("task-vector-transport", transport_task_vector, papers=(45,),
                    summary="transport a task vector to a new base model with a gradient-sign mask")
PROCEDURES.register("stochastic-model-based", stochastic_model_based, papers=(105,),
                    summary="stochastic proximal point, prox-linear, subgradient (phase retrieval)")
PROCEDURES.register("dproxsgt", dproxsgt, papers=(117,),
                    summary="decentralized proximal SGD with gradient tracking over a worker graph")
PROCEDURES.register("g3-trajectory", plan_g3_trajectory, papers=(99,),
                    summary="G3 path and velocity profile by gradient descent: comfort vs time")
PROCEDURES.register("regime-adaptation", adapt_regime, papers=(37,),
                    summary="train longer: scale steps, lr and lr drops by the batch-size ratio")

__all__ = ["PROCEDURES", "BoostedHead", "FeedbackAlignment", "Hypergradient", "Learner",
           "LipschitzManifold", "feedback_linear", "gradient_boost_head", "gradient_learner",
           "ift_hypergradient", "knn_graph", "module_learner"]
