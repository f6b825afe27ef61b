"""The device-kind registry: what ``camid data synth`` can put on a pole (numpy only, no bpy).

Each kind pairs the sampler that draws its shape parameters (here) with the name of the
function in ``blender_scene.py`` that builds it; the job JSON carries ``kind -> builder`` to
Blender, so this table is the only place that lists kinds. A new shape is one sampler here,
one builder there and one ``DEVICE_KINDS`` entry; ``data/cameras.yaml`` then uses the kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from data.synth.draw import pick, uniform

Sampler = Callable[[np.random.Generator, str], dict[str, Any]]


@dataclass(frozen=True)
class DeviceKind:
    """A renderable device: its parameter sampler and its Blender builder's function name."""

    sample: Sampler
    builder: str


def _huawei_ptz(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "arm": uniform(rng, 0.26, 0.4),
        "radius": uniform(rng, 0.105, 0.12),
        "height": uniform(rng, 0.17, 0.21),
    }


def _huawei_bullet(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "reach": uniform(rng, 0.12, 0.2),
        "length": uniform(rng, 0.26, 0.33),
        "width": uniform(rng, 0.1, 0.115),
        "h": uniform(rng, 0.09, 0.105),
        "visor": uniform(rng, 0.05, 0.09),
        "pitch": uniform(rng, 5, 30),
        "yaw": uniform(rng, -60, 60),
    }


def _other_ptz(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    mat = pick(rng, {"housing": 0.65, "white": 0.35})
    shapes = {"sphere": 0.5, "bell": 0.5} if mat == "white" else {"sphere": 0.3, "bell": 0.3, "cylinder": 0.4}
    return {
        "mat": mat,
        "shape": pick(rng, shapes),
        "arm": uniform(rng, 0.18, 0.45),
        "radius": uniform(rng, 0.08, 0.15),
        "height": uniform(rng, 0.08, 0.2),
        "bubble_ratio": uniform(rng, 0.8, 1.0),
        "pendant": bool(rng.random() < 0.3),
        "ir_ring": bool(rng.random() < 0.3),
        "arm_r": uniform(rng, 0.02, 0.045),
    }


def _box(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "mat": pick(rng, {"housing": 0.8, "white": 0.2}),
        "length": uniform(rng, 0.3, 0.5),
        "width": uniform(rng, 0.09, 0.15),
        "h": uniform(rng, 0.08, 0.13),
        "pitch": uniform(rng, 5, 30),
        "yaw": uniform(rng, -60, 60),
        "reach": uniform(rng, 0.15, 0.3),
        "ir_panel": kind == "alpr",
        "shield": pick(rng, {"housing": 0.7, "white": 0.3}),
    }


def _other_bullet(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "mat": pick(rng, {"housing": 0.7, "white": 0.3}),
        "length": uniform(rng, 0.14, 0.26),
        "radius": uniform(rng, 0.03, 0.05),
        "visor": uniform(rng, 0.0, 0.04) if rng.random() < 0.6 else 0.0,
        "pitch": uniform(rng, 5, 30),
        "yaw": uniform(rng, -60, 60),
    }


def _dome(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {"mat": pick(rng, {"housing": 0.6, "white": 0.4}), "radius": uniform(rng, 0.05, 0.1)}


def _street_light(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {"arm": uniform(rng, 0.6, 2.0), "mat": pick(rng, {"housing": 0.5, "grey": 0.5})}


def _signal_head(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {"lit": int(rng.integers(0, 3)), "backplate": bool(rng.random() < 0.6)}


def _loudspeaker(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {"mat": pick(rng, {"white": 0.5, "grey": 0.3, "housing": 0.2})}


def _antenna(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "panel": bool(rng.random() < 0.6),
        "mat": pick(rng, {"white": 0.4, "grey": 0.4, "housing": 0.2}),
    }


def _sign(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "shape": pick(rng, {"round": 0.4, "triangle": 0.3, "square": 0.3}),
        "size": uniform(rng, 0.25, 0.4),
    }


def _junction_box(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {"mat": pick(rng, {"grey": 0.6, "housing": 0.4})}


def _handheld_camera(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """A photographer's camera on a tripod: mirrorless/DSLR, compact or camcorder (hard negative)."""
    style = pick(rng, {"dslr": 0.5, "compact": 0.2, "camcorder": 0.3})
    return {
        "style": style,
        "width": uniform(rng, 0.1, 0.15) if style != "compact" else uniform(rng, 0.09, 0.11),
        "h": uniform(rng, 0.07, 0.11) if style == "dslr" else uniform(rng, 0.055, 0.08),
        "depth": uniform(rng, 0.05, 0.08) if style != "camcorder" else uniform(rng, 0.16, 0.24),
        "lens_r": uniform(rng, 0.025, 0.045) if style != "compact" else uniform(rng, 0.018, 0.025),
        "lens_len": uniform(rng, 0.04, 0.16) if style == "dslr" else uniform(rng, 0.01, 0.04),
        "mat": pick(rng, {"black": 0.7, "grey": 0.15, "white": 0.15}),
        "yaw": uniform(rng, -70, 70),
        "pitch": uniform(rng, -5, 20),
    }


def _phone(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "w": uniform(rng, 0.068, 0.078),
        "h": uniform(rng, 0.14, 0.165),
        "lenses": int(rng.integers(1, 4)),
        "mat": pick(rng, {"black": 0.5, "grey": 0.25, "white": 0.25}),
        "yaw": uniform(rng, -35, 35),
        "landscape": bool(rng.random() < 0.4),
    }


def _smoke_detector(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {
        "radius": uniform(rng, 0.05, 0.075),
        "h": uniform(rng, 0.03, 0.05),
        "reach": uniform(rng, 0.03, 0.2),
    }


def _nothing(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    return {}


DEVICE_KINDS: Mapping[str, DeviceKind] = MappingProxyType(
    {
        "huawei_ptz": DeviceKind(_huawei_ptz, "huawei_ptz"),
        "huawei_bullet": DeviceKind(_huawei_bullet, "huawei_bullet"),
        "other_ptz": DeviceKind(_other_ptz, "other_ptz"),
        "box": DeviceKind(_box, "box_camera"),
        "alpr": DeviceKind(_box, "box_camera"),
        "other_bullet": DeviceKind(_other_bullet, "other_bullet"),
        "turret": DeviceKind(_dome, "turret"),
        "vandal_dome": DeviceKind(_dome, "vandal_dome"),
        "fisheye": DeviceKind(_dome, "fisheye"),
        "street_light": DeviceKind(_street_light, "street_light"),
        "signal_head": DeviceKind(_signal_head, "signal_head"),
        "loudspeaker": DeviceKind(_loudspeaker, "loudspeaker"),
        "antenna": DeviceKind(_antenna, "antenna"),
        "sign": DeviceKind(_sign, "sign"),
        "bird_box": DeviceKind(_nothing, "bird_box"),
        "junction_box": DeviceKind(_junction_box, "junction_box"),
        "handheld_camera": DeviceKind(_handheld_camera, "handheld_camera"),
        "phone": DeviceKind(_phone, "phone"),
        "smoke_detector": DeviceKind(_smoke_detector, "smoke_detector"),
    }
)


# devices that people hold (rendered on a tripod at eye height, not on a pole or wall)
HANDHELD_KINDS = frozenset({"handheld_camera", "phone"})


def sample_device(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """Shape parameters for one device; real-world sizes jittered by a few percent."""
    if kind not in DEVICE_KINDS:
        raise ValueError(f"unknown device kind {kind!r}; known: {', '.join(DEVICE_KINDS)}")
    d: dict[str, Any] = {"kind": kind, "scale": uniform(rng, 0.92, 1.08)}
    d.update(DEVICE_KINDS[kind].sample(rng, kind))
    return d


def builder_names() -> dict[str, str]:
    """``kind -> builder function name`` for the Blender job (the script has no camid imports)."""
    return {kind: k.builder for kind, k in DEVICE_KINDS.items()}
