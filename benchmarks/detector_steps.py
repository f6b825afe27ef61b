"""How many detector training steps (and training windows) a CPU minute buys, per recipe setting.

The detector is undertrained on 2 CPU cores (docs/performance.md): its recipe takes 384-px windows
in batches of 16 with the first 2 stages frozen. This measures the cost of one optimiser step
(forward, loss, backward, AdamW) of the real model and loss on random windows with drawn boxes, for
the recipe and cheaper settings, all in one run, and prints each setting's windows per minute as a
ratio of the recipe's, so the next training run can choose how to spend its 60 minutes.

    python benchmarks/detector_steps.py [--steps 12] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch

from model.factory import create_detector
from training.detect import frozen_and_trained
from training.detection import detection_loss


@dataclass(frozen=True)
class Setting:
    name: str
    window: int  # det_crop
    batch: int
    frozen: int  # det_freeze_blocks


SETTINGS = (
    Setting("recipe (detect.yaml)", 384, 16, 2),
    Setting("frozen 3 stages", 384, 16, 3),
    Setting("frozen 4 stages", 384, 16, 4),
    Setting("256-px windows", 256, 16, 2),
    Setting("256-px windows, batch 32", 256, 32, 2),
    Setting("256-px windows, frozen 3", 256, 32, 3),
)


def _batch(
    setting: Setting, rng: np.random.Generator
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Random uint8 windows, each with 1-3 small boxes of random camera classes."""
    s = setting.window
    images = torch.from_numpy(rng.integers(0, 256, (setting.batch, 3, s, s), dtype=np.uint8))
    items = []
    for _ in range(setting.batch):
        n = int(rng.integers(1, 4))
        x0, y0 = rng.uniform(0, s - 40, n), rng.uniform(0, s - 40, n)
        size = rng.uniform(6, 40, n)
        boxes = np.stack([x0, y0, x0 + size, y0 + size * 0.8], axis=1).astype(np.float32)
        items.append((torch.from_numpy(boxes), torch.from_numpy(rng.integers(0, 3, n))))
    return images, items


def seconds_per_step(setting: Setting, steps: int, warmup: int = 2) -> float:
    """Median wall-clock seconds of one optimiser step (after ``warmup`` steps)."""
    torch.manual_seed(0)
    model = create_detector("efficientnet_lite0", 3, pretrained=None, width=64)
    trained = frozen_and_trained(model, setting.frozen)
    params = [p for m in trained for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    model.train()
    rng = np.random.default_rng(0)
    times = []
    for i in range(warmup + steps):
        images, items = _batch(setting, rng)
        start = time.perf_counter()
        loss = detection_loss(model.forward_raw(images), items)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=12, help="timed steps per setting (default 12)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"detector (efficientnet_lite0, width 64), {args.threads} threads, median of {args.steps} steps")
    head = f"{'setting':<28}{'s/step':>8}{'steps/min':>11}{'windows/min':>13}{'vs recipe':>11}"
    print(f"{head}{'pixels vs recipe':>18}")
    base: tuple[float, float] | None = None
    for s in SETTINGS:
        sec = seconds_per_step(s, args.steps)
        windows = 60.0 / sec * s.batch
        pixels = windows * s.window**2
        base = base or (windows, pixels)
        print(
            f"{s.name:<28}{sec:>8.2f}{60.0 / sec:>11.1f}{windows:>13.0f}"
            f"{windows / base[0]:>10.2f}x{pixels / base[1]:>17.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
