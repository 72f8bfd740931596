"""OptEx's N true gradients (papers.md row 72): one ``vmap`` batch against N closure calls.

Times :func:`trainlab.optim.optex.parallel_gradients` on an MLP and batch (CPU, one thread
unless ``--threads``), vectorized and sequential, at several ``N``; prints the median of
``--repeats`` timings and the speed-up, and checks that both paths give the same gradients.

Usage: python benchmarks/optex_parallel.py [--width 256] [--batch 256] [--n 2,4,8]
       [--repeats 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from trainlab.optim.loss_closure import make_closure
from trainlab.optim.optex import parallel_gradients


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--n", default="2,4,8")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(40, args.width), nn.ReLU(), nn.Linear(args.width, args.width),
                          nn.ReLU(), nn.Linear(args.width, 10))
    x = torch.randn(args.batch, 40, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    closure = make_closure(model, nn.functional.cross_entropy, x, y)
    params = list(model.parameters())
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    print(f"MLP 40-{args.width}-{args.width}-10, batch {args.batch}, {theta.numel()} parameters, "
          f"{args.threads} thread(s)")
    print("N   vmap_ms   loop_ms   speed-up   max|diff|")
    for n in (int(v) for v in args.n.split(",")):
        points = theta + 0.01 * torch.randn(n, theta.numel(), generator=gen)
        fast = parallel_gradients(closure, params, points)[1]
        slow = parallel_gradients(closure, params, points, vectorize=False)[1]
        t_fast = timed(lambda pts=points: parallel_gradients(closure, params, pts), args.repeats)
        t_slow = timed(lambda pts=points: parallel_gradients(closure, params, pts,
                                                             vectorize=False), args.repeats)
        print(f"{n:<3d} {1e3 * t_fast:8.2f}  {1e3 * t_slow:8.2f}   {t_slow / t_fast:7.2f}x   "
              f"{float((fast - slow).abs().max()):.1e}")


if __name__ == "__main__":
    main()
