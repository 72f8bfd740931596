"""Init-time inspection: the initial state of a model under one or several init schemes,
measured without training (signal propagation through depth, dynamical isometry, initial
guessing bias, conditioning at step 0), as a table, JSON or an HTML report.

Examples:
    >>> import torch, trainlab.inspect as ti
    >>> from trainlab.models import build_model
    >>> model = build_model("mlp", (8,), 3, depth=4, width=16)
    >>> x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    >>> result = ti.inspect_init(model, (x, y), ["orthogonal", "kaiming-normal"],
    ...                          torch.nn.functional.cross_entropy, measures=("signal",))
    >>> [s.scheme for s in result.schemes]
    ['orthogonal', 'kaiming-normal']
"""

from trainlab.inspect.inspector import (
    MEASURES,
    Inspection,
    SchemeInspection,
    inspect_init,
    inspect_scheme,
)
from trainlab.inspect.render import report_page, rich_table
from trainlab.inspect.spectra import jacobian_singular_values, weight_product_singular_values

__all__ = ["MEASURES", "Inspection", "SchemeInspection", "inspect_init", "inspect_scheme",
           "jacobian_singular_values", "report_page", "rich_table",
           "weight_product_singular_values"]
