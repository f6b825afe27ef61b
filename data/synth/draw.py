"""Small random draws shared by the scene and device samplers (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def pick(rng: np.random.Generator, options: Mapping[str, float]) -> str:
    """One key of ``options``, drawn with probability proportional to its weight."""
    keys = list(options)
    p = np.array([options[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float drawn uniformly from [lo, hi)."""
    return float(rng.uniform(lo, hi))


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A float whose logarithm is uniform between log(lo) and log(hi)."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def rgb(c: Sequence[float] | np.ndarray) -> list[float]:
    """A colour as a JSON-friendly list rounded to 4 decimals."""
    return [round(float(x), 4) for x in c]
