"""Measure a model's initial state under one or several init schemes, without training:
forward and backward signal through depth, Jacobian and weight-product singular values
(dynamical isometry), initial guessing bias and the top Hessian eigenvalue at step 0.
Prints a table; writes an HTML report with one plot per measure (schemes overlaid).

Example:
    trainlab inspect --task mnist1d --model mlp --param depth=50 \\
        --init orthogonal,kaiming-normal,lsuv --out report.html
    trainlab inspect --model mlp -p depth=20 -p activation=tanh --init kumar,edge-of-chaos \\
        -p init.kumar.activation=tanh --json
"""

from __future__ import annotations

import argparse
from typing import Any

NAME = "inspect"
HELP = "measure the initial state of a model under several init schemes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from trainlab.cli._options import add_json

    parser.add_argument("--task", default="mnist1d", help="task (trainlab list tasks)")
    parser.add_argument("--model", default=None,
                        help="model (trainlab list models; default: the task's)")
    parser.add_argument("--init", default="orthogonal,kaiming-normal,lsuv",
                        help="comma-separated init schemes (trainlab list inits)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="model parameter (depth=50), or task.KEY=VALUE, or "
                             "init.SCHEME.KEY=VALUE (repeatable)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="inputs measured (from the training split)")
    parser.add_argument("--measures", default=",".join(_measures()),
                        help="comma-separated subset of the measures")
    parser.add_argument("--seed", type=int, default=0, help="seed of every scheme's generator")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--out", metavar="HTML", help="write the HTML report here")
    add_json(parser)


def _measures() -> tuple[str, ...]:
    from trainlab.inspect import MEASURES

    return MEASURES


def parse_params(items: list[str]) -> tuple[dict[str, Any], dict[str, Any],
                                               dict[str, dict[str, Any]]]:
    """``(model_params, task_params, init_params)`` from ``KEY=VALUE`` assignments."""
    from trainlab.errors import ConfigError
    from trainlab.train.config import parse_value

    model: dict[str, Any] = {}
    task: dict[str, Any] = {}
    init: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"expected KEY=VALUE, got {item!r}")
        parts, value = key.strip().split("."), parse_value(raw)
        if len(parts) == 1:
            model[parts[0]] = value
        elif parts[0] == "model" and len(parts) == 2:
            model[parts[1]] = value
        elif parts[0] == "task" and len(parts) == 2:
            task[parts[1]] = value
        elif parts[0] == "init" and len(parts) == 3:
            init.setdefault(parts[1], {})[parts[2]] = value
        else:
            raise ConfigError(f"cannot set {key!r}: use KEY, model.KEY, task.KEY or "
                              "init.SCHEME.KEY")
    return model, task, init


def main(args: argparse.Namespace) -> int:
    import torch

    from trainlab.cli._options import print_json
    from trainlab.errors import check_range
    from trainlab.inspect import inspect_init, report_page, rich_table
    from trainlab.models import build_model
    from trainlab.tasks import build_task

    check_range("batch_size", args.batch_size, low=1, owner="inspect")
    model_params, task_params, init_params = parse_params(args.param)
    task = build_task(args.task, **task_params)
    dtype = getattr(torch, args.dtype)
    task = task.to(dtype=dtype)
    model_name = args.model or task.default_model
    model = build_model(model_name, task.input_shape, task.num_outputs, **model_params).to(dtype)
    batch = (task.x_train[:args.batch_size], task.y_train[:args.batch_size])
    schemes = [s.strip() for s in args.init.split(",") if s.strip()]
    measures = [m.strip() for m in args.measures.split(",") if m.strip()]
    params_text = ",".join(f"{k}={v}" for k, v in model_params.items())
    meta = {"task": args.task, "model": model_name, "params": params_text}
    result = inspect_init(model, batch, schemes, task.loss, seed=args.seed, measures=measures,
                          hyper=init_params, meta=meta)
    if args.out:
        report_page(result, title=f"Initial state: {model_name} {params_text}").write(args.out)
    if args.json:
        print_json(dict(result.to_dict(), report=args.out))
    else:
        from rich.console import Console

        console = Console()
        console.print(rich_table(result))
        if args.out:
            console.print(f"report: {args.out}")
    return 0
