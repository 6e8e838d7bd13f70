"""Training throughput per stage at a recipe's sizes (default: configs/fmow.toml), and 2-process DDP scaling on CPU.

For each stage (hr, lr classifiers; policy Pt, Ft-1, Ft-2) one training step is what ``zoomplan train``
runs: forward, loss, backward, Adam step, on synthetic batches (random pixels and labels: throughput
does not depend on the values) of ``--batch-size`` images, ``--steps`` timed steps after ``--warmup``.
Prints images/s and the time one fMoW epoch (``--epoch-images``, 350,000) would take at that rate.

``--ddp``: the LR-classifier step of a small recipe (configs/ucmerced.toml sizes) with 1 and then 2
processes under ``torch.distributed.run`` (gloo, DistributedDataParallel, one torch thread per
process), images/s summed over processes.

Usage::

    python benchmarks/train_throughput.py                         # fMoW sizes on CPU, batch 8, 5 steps
    python benchmarks/train_throughput.py --device cuda --batch-size 64
    python benchmarks/train_throughput.py --ddp                   # also the 1 vs 2 process scaling
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zoomplan.models.registry import create_model
from zoomplan.train.config import load_config
from zoomplan.train.steps import PolicyModels, classifier_loss, policy_step

HERE = Path(__file__).resolve()
N_CLASSES = {"fmow": 62, "ucmerced": 21}


def _net(spec: Any, n_out: int, device: torch.device) -> torch.nn.Module:
    return create_model(spec.name, num_outputs=n_out, **dict(spec.kwargs)).to(device)


def stage_rates(recipe: str, device: torch.device, batch: int, steps: int, warmup: int) -> dict[str, float]:
    """Images/s of one training step of each stage at ``recipe``'s sizes."""
    cfg = load_config(recipe)
    m = cfg.model
    k = N_CLASSES.get(cfg.name, 10)
    P = m.patch_grid[0] * m.patch_grid[1]
    g = torch.Generator(device="cpu").manual_seed(0)
    hr = torch.rand(batch, 3, m.hr_size_px, m.hr_size_px, generator=g).to(device)
    lr = torch.rand(batch, 3, m.lr_size_px, m.lr_size_px, generator=g).to(device)
    y = torch.randint(0, k, (batch,), generator=g).to(device)
    hr_net, lr_net, pol = _net(m.hr_classifier, k, device), _net(m.lr_classifier, k, device), _net(m.policy, P, device)

    def timed(step: Any, params: list[torch.nn.Parameter]) -> float:
        opt = torch.optim.Adam(params, lr=1e-4)
        for i in range(warmup + steps):
            if i == warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            step().backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return steps * batch / (time.perf_counter() - t)

    out = {}
    out["hr classifier"] = timed(lambda: classifier_loss(hr_net, hr, y)[0], list(hr_net.parameters()))
    out["lr classifier"] = timed(lambda: classifier_loss(lr_net, lr, y)[0], list(lr_net.parameters()))
    for name, train_hr, lr_model in (
        ("policy Pt", False, None),
        ("policy Ft-1", True, None),
        ("policy Ft-2", True, lr_net),
    ):
        pm = PolicyModels(
            policy=pol, hr=hr_net, lr=lr_model, train_hr=train_hr, combine=m.combine, grid=tuple(m.patch_grid)
        )
        params = list(pol.parameters()) + (list(hr_net.parameters()) if train_hr else [])
        out[name] = timed(lambda: policy_step(pm, hr, lr, y, alpha=0.8, sigma=0.5, generator=None)[0], params)
    return out


def _ddp_worker(recipe: str, batch: int, steps: int, warmup: int, out: str) -> None:
    """One rank under torch.distributed.run: the LR-classifier step wrapped in DDP (gloo, CPU)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    cfg = load_config(recipe)
    m = cfg.model
    k = N_CLASSES.get(cfg.name, 10)
    torch.manual_seed(dist.get_rank())
    net = DDP(_net(m.lr_classifier, k, torch.device("cpu")))
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(batch, 3, m.lr_size_px, m.lr_size_px)
    y = torch.randint(0, k, (batch,))
    for i in range(warmup + steps):
        if i == warmup:
            dist.barrier()
            t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
    dist.barrier()
    dt = time.perf_counter() - t
    if dist.get_rank() == 0:
        Path(out).write_text(json.dumps({"images_per_s": dist.get_world_size() * steps * batch / dt}))
    dist.destroy_process_group()


def ddp_rate(n: int, recipe: str, batch: int, steps: int, warmup: int) -> float:
    """Images/s (all ranks) of ``n`` CPU processes under torch.distributed.run."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={n}",
            str(HERE),
            "--_ddp",
            recipe,
            str(batch),
            str(steps),
            str(warmup),
            str(out),
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
        return json.loads(out.read_text())["images_per_s"]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_ddp":
        r, b, s, w, o = sys.argv[2:7]
        _ddp_worker(r, int(b), int(s), int(w), o)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="fmow", help="training recipe (configs/NAME.toml or a path)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--epoch-images", type=int, default=350_000, help="images in one epoch (fMoW-rgb train: ~350k)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's; 1 is often faster on a busy small CPU)",
    )
    ap.add_argument(
        "--ddp",
        action="store_true",
        help="also measure 1 vs 2 CPU processes (DDP, gloo) on the ucmerced recipe's LR classifier",
    )
    args = ap.parse_args()
    dev = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), device {dev}, "
        f"recipe {args.recipe}, batch {args.batch_size}, {args.steps} timed steps after {args.warmup}"
    )
    rates = stage_rates(args.recipe, dev, args.batch_size, args.steps, args.warmup)
    print(f"  {'stage':<16} {'images/s':>10} {'one epoch of ' + format(args.epoch_images, ',') + ' images':>32}")
    for name, r in rates.items():
        print(f"  {name:<16} {r:>10.1f} {args.epoch_images / r / 3600:>29.1f} h")
    if args.ddp:
        one = ddp_rate(1, "ucmerced", 32, 20, 3)
        two = ddp_rate(2, "ucmerced", 32, 20, 3)
        print(
            f"DDP on CPU (gloo, ucmerced LR classifier, batch 32 per process, 1 thread each): 1 process {one:.0f} "
            f"images/s, "
            f"2 processes {two:.0f} images/s: x{two / one:.2f}"
        )


if __name__ == "__main__":
    main()
