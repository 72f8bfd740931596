"""Composable gradient transforms (``init``/``update`` pure pairs), ``chain``, and the one
adapter that turns any transform into a ``torch.optim.Optimizer``."""

from trainlab.optim.transforms._adapter import TransformOptimizer
from trainlab.optim.transforms._base import (
    ChainState,
    Transform,
    chain,
    identity,
    tree_leaves,
    tree_replace_leaves,
)
from trainlab.optim.transforms._registry import TRANSFORMS
from trainlab.optim.transforms.clipping import clip_by_global_norm, clip_by_value, global_norm
from trainlab.optim.transforms.filters import ema, grokfast_ema, grokfast_ma
from trainlab.optim.transforms.masking import masked
from trainlab.optim.transforms.scaling import scale_by_adam
from trainlab.optim.transforms.weight_decay import add_decayed_weights

TRANSFORMS.register("clip_by_global_norm", clip_by_global_norm, papers=(31,),
                    summary="rescale all gradients when their global norm exceeds max_norm")
TRANSFORMS.register("clip_by_value", clip_by_value, papers=(31,),
                    summary="clip each gradient coordinate to [-max_abs, max_abs]")
TRANSFORMS.register("ema", ema, summary="exponential moving average of the gradients")
TRANSFORMS.register("grokfast_ema", grokfast_ema, papers=(101,),
                    summary="Grokfast: add lamb x EMA of past gradients (slow components)")
TRANSFORMS.register("grokfast_ma", grokfast_ma, papers=(101,),
                    summary="Grokfast-MA: add lamb x windowed mean of past gradients")
TRANSFORMS.register("scale_by_adam", scale_by_adam,
                    summary="Adam's bias-corrected m / (sqrt(v) + eps) direction")
TRANSFORMS.register("add_decayed_weights", add_decayed_weights,
                    summary="add weight_decay x params (decoupled weight decay)")

__all__ = ["TRANSFORMS", "ChainState", "Transform", "TransformOptimizer", "add_decayed_weights",
           "chain", "clip_by_global_norm", "clip_by_value", "ema", "global_norm", "grokfast_ema",
           "grokfast_ma", "identity", "masked", "scale_by_adam", "tree_leaves",
           "tree_replace_leaves"]
