"""Entry point of one DDP rank for tests/training/test_train.py (spawned, so it lives in a module)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def run_rank(rank: int, world: int, port: int, manifest: str, out: str, overrides: dict[str, Any]) -> None:
    import torch

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    from training.config import resolve_config
    from training.distributed import DistInfo, shutdown
    from training.train import train

    result = train(manifest, Path(out) / "run", resolve_config(None, **overrides))
    torch.save(result.model.state_dict(), Path(out) / f"weights-rank{rank}.pt")
    shutdown(DistInfo(rank, world, rank))
