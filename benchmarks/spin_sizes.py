"""One thread against two on small networks, with idle OpenMP threads spinning briefly.

Run: ``GOMP_SPINCOUNT=10000 python benchmarks/spin_sizes.py LAYERS BATCH THREADS``, e.g.
``784,256,64,30 64 2``: a plain loop (ReLU stack and its mirror, MSE, fused Adam) over 8,192
random rows, the best of three epochs after one untimed; prints samples/s and the step's largest
matrix product (batch × weights), the size ``runtime.threads.SMALL_PRODUCT`` is measured in.
The spin count must be set before Python starts: the OpenMP runtime reads it when torch loads it.
"""

import sys
import time

import torch
from torch import nn

layers = [int(v) for v in sys.argv[1].split(",")]
batch, threads = int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
torch.set_num_threads(threads)
torch.set_flush_denormal(True)
x = torch.rand(8192, layers[0])
widths = list(zip(layers[:-1], layers[1:]))
modules: list[nn.Module] = []
for a, b in widths + [(b, a) for a, b in reversed(widths)]:
    modules += [nn.Linear(a, b), nn.ReLU()]
net = nn.Sequential(*modules[:-1])
optimizer = torch.optim.Adam(net.parameters(), 1e-3, fused=True)


def epoch() -> float:
    t0 = time.perf_counter()
    for i in range(0, len(x), batch):
        rows = x[i : i + batch]
        loss = ((net(rows) - rows) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - t0


epoch()
best = min(epoch() for _ in range(3))
product = batch * max(a * b for a, b in widths)
speed = len(x) / best
print(f"{sys.argv[1]} batch {batch}, {threads} threads: {speed:,.0f} samples/s, product {product / 1e6:.1f}M")
