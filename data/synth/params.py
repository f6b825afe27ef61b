"""Per-image scene parameters for the synthetic renders (torch-free, numpy only).

Every random choice lives here (device shapes in ``devices.py``), drawn from
``numpy.random.default_rng([seed, index])``, so an image's scene depends only on (seed, index,
size, samples) and never on how many images are requested or which ones were already rendered.
The Blender script only executes these plans.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from data.synth.catalogue import CameraClass, Catalogue
from data.synth.devices import HANDHELD_KINDS, sample_device
from data.synth.draw import log_uniform as _logu
from data.synth.draw import pick as _pick
from data.synth.draw import rgb as _rgb
from data.synth.draw import uniform as _u

Plan = dict[str, Any]

CONDITIONS: dict[str, float] = {"sun": 0.34, "overcast": 0.26, "backlit": 0.14, "dusk": 0.12, "night": 0.14}

HOUSING_COLOURS = {
    "black": ((0.025, 0.025, 0.027), 0.35),
    "dark_grey": ((0.09, 0.09, 0.095), 0.4),
    "grey": ((0.32, 0.33, 0.34), 0.45),
    "beige": ((0.68, 0.64, 0.55), 0.4),
    "white": ((0.74, 0.75, 0.74), 0.35),
}

TRIPOD = {"black": 0.6, "grey": 0.4}


def class_schedule(n: int, classes: Sequence[str], mix: Mapping[str, float]) -> list[str]:
    """Labels for images 0..n-1: greedy largest-deficit, so every prefix is balanced.

    The label of image ``i`` does not depend on ``n`` (resuming with a larger ``n`` keeps the
    earlier images), and the first ``len(classes)`` images cover every class.
    """
    weights = np.array([float(mix.get(c, 0.0)) for c in classes])
    if (weights <= 0).any():
        missing = [c for c, w in zip(classes, weights, strict=True) if w <= 0]
        raise ValueError(f"class mix has no positive weight for {missing}; give each requested class a share")
    weights = weights / weights.sum()
    counts = np.zeros(len(classes))
    out = []
    for i in range(n):
        deficit = weights * (i + 1) - counts
        k = int(np.argmax(deficit))
        counts[k] += 1
        out.append(classes[k])
    return out


def sample_materials(rng: np.random.Generator, condition: str) -> dict[str, dict[str, Any]]:
    """Material specs: Huawei white plastic, housings, glass, poles, facades, foliage."""
    w = _u(rng, 0.70, 0.86)
    tint = rng.normal(0, 0.012, 3)
    housing_name = _pick(rng, dict.fromkeys(HOUSING_COLOURS, 1.0))
    hcol, hrough = HOUSING_COLOURS[housing_name]
    pole_kind = _pick(rng, {"galvanised": 0.55, "painted_grey": 0.25, "painted_dark": 0.2})
    pole = {
        "galvanised": {"color": _rgb([_u(rng, 0.42, 0.58)] * 3), "rough": _u(rng, 0.35, 0.6), "metal": 0.85},
        "painted_grey": {"color": _rgb([_u(rng, 0.25, 0.4)] * 3), "rough": 0.55, "metal": 0.3},
        "painted_dark": {"color": _rgb([0.04, _u(rng, 0.05, 0.09), 0.06]), "rough": 0.5, "metal": 0.3},
    }[pole_kind]
    if rng.random() < 0.6:  # rust or grime running down from the clamps and brackets
        rust = _pick(rng, {"rust": 0.5, "grime": 0.5})
        colour: list[float] = list(pole["color"])  # type: ignore[call-overload]
        dirt = [0.3, 0.14, 0.06] if rust == "rust" else [c * 0.55 for c in colour]
        pole.update(
            kind="grime", dirt=_rgb(dirt), streaks=round(_u(rng, 0.05, 0.2), 3), noise_scale=_u(rng, 4, 14)
        )
    leaf = [_u(rng, 0.04, 0.12), _u(rng, 0.12, 0.25), _u(rng, 0.02, 0.06)]
    if condition in ("dusk", "night"):
        leaf = [c * 0.7 for c in leaf]
    return {
        "white": {
            "color": _rgb(np.clip(np.array([w, w, w * 0.985]) + tint, 0, 1)),
            "rough": _u(rng, 0.22, 0.45),
            "coat": _u(rng, 0.1, 0.5),
            "kind": "grime",
            "noise_scale": _u(rng, 3, 12),
            "dirt": _rgb([w * 0.72, w * 0.7, w * 0.64]),
            "streaks": round(_u(rng, 0.08, 0.3), 3) if rng.random() < 0.5 else 0.0,
        },
        "bubble": {
            "color": _rgb([_u(rng, 0.008, 0.03)] * 3),
            "rough": _u(rng, 0.02, 0.08),
            "spec": 0.9,
            "coat": 1.0,
        },
        "lens": {"color": [0.01, 0.01, 0.012], "rough": 0.1, "spec": 0.8},
        "grey": {"color": _rgb([_u(rng, 0.25, 0.45)] * 3), "rough": 0.5, "metal": 0.3},
        "logo": {"color": [0.75, 0.03, 0.04], "rough": 0.4},
        "ink": {"color": [0.12, 0.12, 0.13], "rough": 0.5},
        "housing": {
            "color": _rgb(hcol),
            "rough": hrough,
            "coat": 0.2,
            "kind": "grime",
            "dirt": _rgb([c * 0.7 + 0.03 for c in hcol]),
        },
        "pole": pole,
        "cable": {"color": [0.02, 0.02, 0.02], "rough": 0.6},
        "cam_black": {"color": _rgb([_u(rng, 0.015, 0.04)] * 3), "rough": _u(rng, 0.35, 0.6), "spec": 0.4},
        "tripod": {"color": _rgb([_u(rng, 0.02, 0.3)] * 3), "rough": 0.45, "metal": 0.6},
        "lamp": _lamp_material(condition),
        "signal": {"color": _rgb([_u(rng, 0.02, 0.06)] * 3), "rough": 0.5},
        "lens_off": {"color": [0.05, 0.05, 0.05], "rough": 0.1},
        "red_on": {"color": [1, 0.05, 0.02], "kind": "emit", "strength": 8.0},
        "amber_on": {"color": [1, 0.5, 0.02], "kind": "emit", "strength": 8.0},
        "green_on": {"color": [0.1, 1, 0.5], "kind": "emit", "strength": 8.0},
        "ir": {"color": [0.08, 0.02, 0.02], "rough": 0.1, "spec": 0.8},
        "wood": {"color": _rgb([_u(rng, 0.25, 0.4), _u(rng, 0.15, 0.22), 0.08]), "rough": 0.8},
        "sign_blue": {
            "color": _rgb(HOUSING_COLOURS["white"][0] if rng.random() < 0.3 else (0.02, 0.1, 0.45)),
            "rough": 0.4,
        },
        "sign_inner": {"color": [0.7, 0.05, 0.05], "rough": 0.4},
        "wall": _facade_material(rng, 14.0, _u(rng, 10, 22), condition),
        "wall_trim": {"color": _rgb([_u(rng, 0.4, 0.7)] * 3), "rough": 0.8},
        "asphalt": {"color": _rgb([_u(rng, 0.07, 0.16)] * 3), "rough": 0.9, "kind": "asphalt"},
        "bark": {"color": [0.09, 0.07, 0.05], "rough": 0.9},
        "leaves": {
            "color": _rgb(leaf),
            "rough": 0.7,
            "kind": "leaves",
            "noise_scale": _u(rng, 18, 35),
            "holes": _u(rng, 0.38, 0.5),
        },
    }


def _lamp_material(condition: str) -> dict[str, Any]:
    if condition in ("dusk", "night"):
        return {"color": [1.0, 0.8, 0.55], "kind": "emit", "emit": [1.0, 0.8, 0.55], "strength": 25.0}
    return {"color": [0.6, 0.6, 0.62], "rough": 0.15, "spec": 0.6}


def _facade_material(rng: np.random.Generator, width: float, height: float, condition: str) -> dict[str, Any]:
    base = {
        "beige": (0.62, 0.55, 0.44),
        "cream": (0.72, 0.68, 0.58),
        "grey": (0.45, 0.45, 0.45),
        "ochre": (0.6, 0.45, 0.25),
        "pink": (0.65, 0.5, 0.48),
        "white": (0.75, 0.75, 0.73),
        "brown": (0.3, 0.22, 0.16),
    }
    col = base[_pick(rng, dict.fromkeys(base, 1.0))]
    lit = _u(rng, 0.5, 2.0) if condition == "night" else (0.4 if condition == "dusk" else 0.0)
    frames = {"white": (0.72, 0.72, 0.7), "brown": (0.16, 0.1, 0.06), "grey": (0.3, 0.3, 0.3)}
    cell_w, cell_h = _u(rng, 2.6, 3.8), _u(rng, 2.8, 3.4)
    return {
        "kind": "facade",
        "color": _rgb(np.array(col) * _u(rng, 0.8, 1.1)),
        "window": _rgb([_u(rng, 0.02, 0.07)] * 3),
        # window columns and storeys across the facade; a window's margins in its cell (share of
        # the cell: left/right, below, above): panes taller than wide, as in real buildings
        "scale": [round(width / cell_w, 3), round(height / cell_h, 3), 1.0],
        "size_m": [round(width, 2), round(height, 2)],
        "margins": [round(_u(rng, 0.2, 0.34), 3), round(_u(rng, 0.24, 0.34), 3), round(_u(rng, 0.1, 0.2), 3)],
        "frame": _rgb(frames[_pick(rng, {"white": 0.6, "brown": 0.25, "grey": 0.15})]),
        "frame_w": round(_u(rng, 0.015, 0.04), 3),
        "sill": bool(rng.random() < 0.7),
        "curtains": round(_u(rng, 0.05, 0.35), 3),  # share of panes with a curtain or blind behind
        "stains": round(_u(rng, 0.0, 0.25), 3),  # dark rain runs and patches on the plaster
        "rough": 0.85,
        "lit": lit,
    }


def sample_light(rng: np.random.Generator, condition: str, view_az: float) -> dict[str, Any]:
    """Sky and sun for a lighting condition; backlit puts the sun behind the subject."""
    sun_az = _u(rng, 0, 360)
    if condition == "sun":
        return {
            "sky": "day",
            "sun_elev": _u(rng, 15, 65),
            "sun_az": sun_az,
            "sky_strength": _u(rng, 0.25, 0.45),
            "sun_strength": _u(rng, 3.0, 4.5),
            "haze": _u(rng, 0.0, 0.2),
            "exposure": _u(rng, -0.3, 0.2),
            "dust": _u(rng, 0.5, 2.0),
        }
    if condition == "overcast":
        g = _u(rng, 0.7, 0.85)
        return {
            "sky": "day",
            "sun_elev": _u(rng, 20, 60),
            "sun_az": sun_az,
            "sky_strength": _u(rng, 0.8, 1.4),
            "sun_strength": _u(rng, 0.0, 0.4),
            "haze": _u(rng, 0.8, 0.97),
            "haze_color": _rgb([g, g * 1.01, g * 1.04]),
            "exposure": _u(rng, -0.2, 0.4),
        }
    if condition == "backlit":
        return {
            "sky": "day",
            "sun_elev": _u(rng, 6, 30),
            "sun_az": (view_az + 180 + _u(rng, -25, 25)) % 360,
            "sky_strength": _u(rng, 0.35, 0.6),
            "sun_strength": _u(rng, 3.0, 4.5),
            "haze": _u(rng, 0.0, 0.3),
            "sun_disc": True,
            "sun_intensity": _u(rng, 0.05, 0.3),
            "exposure": _u(rng, -0.4, 0.3),
            "dust": _u(rng, 1.0, 4.0),
        }
    if condition == "dusk":
        return {
            "sky": "day",
            "sun_elev": _u(rng, -2.5, 2.5),
            "sun_az": sun_az,
            "sky_strength": _u(rng, 0.6, 1.2),
            "sun_strength": _u(rng, 0.0, 1.0),
            "sun_color": [1.0, 0.55, 0.3],
            "haze": _u(rng, 0.0, 0.3),
            "exposure": _u(rng, 0.4, 1.3),
            "dust": _u(rng, 1.0, 5.0),
        }
    c = _u(rng, 0.6, 1.4)
    return {
        "sky": "night",
        "night_color": _rgb([0.004 * c, 0.006 * c, 0.014 * c]),
        "sky_strength": 1.0,
        "sun_strength": 0.0,
        "exposure": _u(rng, 0.5, 1.5),
        "look": "Medium Contrast",
    }


# Blender's CC0 HDR environment maps (datafiles/studiolights/world, Greg Zaal / Poly Haven):
# where each map's sun (its brightest pixel) is: u (0..1 across the equirectangular image, as
# Blender's environment texture reads it) and elevation in degrees. Measured once from the files
# (Blender 3.4); courtyard (a carport roof overhead), interior and studio are not street scenes.
HDRI_SUNS: dict[str, tuple[float, float]] = {
    "city": (0.5997, 47.5),
    "forest": (0.5986, 19.7),
    "sunrise": (0.5997, 7.7),
    "sunset": (0.5997, 3.2),
    "night": (0.2822, 6.3),
}
HDRI_FOR: dict[str, dict[str, float]] = {
    "sun": {"city": 0.6, "forest": 0.4},
    "overcast": {"city": 0.6, "forest": 0.4},
    "backlit": {"sunrise": 0.35, "sunset": 0.35, "forest": 0.3},
    "dusk": {"sunset": 0.6, "sunrise": 0.4},
    "night": {"night": 1.0},
}
HDRI_SHARE = 0.65  # the rest keep the procedural (Nishita) sky, for variety


def hdri_rotation(name: str, sun_az: float) -> float:
    """Rotation about the vertical (degrees) that puts map ``name``'s sun at azimuth ``sun_az``
    (Blender's environment texture reads direction (cos a, sin a) at u = 0.5 + (180 - a) / 360)."""
    map_az = math.degrees(math.pi - (HDRI_SUNS[name][0] - 0.5) * 2 * math.pi)
    return round((map_az - sun_az) % 360, 2)


def sample_hdri(rng: np.random.Generator, condition: str, light: dict[str, Any]) -> None:
    """Light (and background sky) from a real HDR photo, rotated so that its sun is where the
    sun lamp is; the map's own sun is clamped so the lamp gives the crisp shadows."""
    if rng.random() >= HDRI_SHARE:
        return
    name = _pick(rng, HDRI_FOR[condition])
    elev = HDRI_SUNS[name][1]
    light["sun_elev"] = elev if condition != "dusk" else min(elev, light["sun_elev"] + 3.0)
    light["hdri"] = {
        "name": name,
        "rotation": hdri_rotation(name, light.get("sun_az", 0.0)),
        "strength": round(_u(rng, 0.7, 1.4) * (0.15 if condition == "night" else 1.0), 3),
        # low enough that the coarse importance map stays noise-free at a few samples
        "clamp": round(_u(rng, 2.0, 6.0) if condition == "overcast" else _u(rng, 4.0, 15.0), 2),
    }


def night_lamps(rng: np.random.Generator, centre: Sequence[float], view_az: float) -> list[dict[str, Any]]:
    """Street lamps near the subject so it is visible at dusk and night."""
    lamps = []
    sodium = rng.random() < 0.4
    colour = [1.0, 0.62, 0.3] if sodium else [1.0, 0.9, 0.8]
    for _ in range(int(rng.integers(1, 3))):
        a = math.radians(view_az + _u(rng, -80, 80))
        r = _u(rng, 2.0, 7.0)
        loc = [centre[0] + r * math.cos(a), centre[1] + r * math.sin(a), _u(rng, 4.0, 9.0)]
        lamps.append({"loc": _rgb(loc), "power": _u(rng, 600, 2500), "color": colour})
    return lamps


def sample_scene_devices(
    rng: np.random.Generator, entry: CameraClass, mount: dict[str, Any]
) -> tuple[list[Any], str, str]:
    """The framed subject plus companions on the same mount; returns (devices, kind, form factor)."""
    weights = [s.weight for s in entry.subjects]
    i = int(rng.choice(len(weights), p=np.array(weights) / sum(weights)))
    kind, form = entry.subjects[i].kind, entry.subjects[i].form_factor
    if kind in HANDHELD_KINDS:  # on a tripod at eye height, alone
        mount.clear()
        mount.update({"kind": "tripod", "height": 0.0, "legs": _u(rng, 0.3, 0.55), "mat": _pick(rng, TRIPOD)})
        subject = {
            **sample_device(rng, kind),
            "z": round(_u(rng, 1.1, 1.75), 3),
            "azimuth": round(_u(rng, -180, 180), 2),
        }
        return [{**subject, "subject": True}], kind, form
    z = _u(rng, 3.0, 8.0) if mount["kind"] == "pole" else _u(rng, 3.0, 7.0)
    az = _u(rng, -180, 180) if mount["kind"] == "pole" else _u(rng, -40, 40)
    subject = {**sample_device(rng, kind), "z": round(z, 3), "azimuth": round(az, 2), "subject": True}
    devices = [subject]
    n_companions = int(rng.choice([0, 1, 2, 3], p=[0.35, 0.35, 0.2, 0.1]))
    for _ in range(n_companions if entry.companions else 0):
        comp = str(rng.choice(entry.companions))
        dz = _u(rng, 0.45, 1.4) * (1 if rng.random() < 0.5 else -1)
        if comp == "street_light":
            dz = abs(dz) + 1.0
        daz = _u(rng, 60, 180) * (1 if rng.random() < 0.5 else -1)
        dev = {**sample_device(rng, comp), "z": round(max(2.6, z + dz), 3)}
        dev["azimuth"] = round(az + daz, 2) if mount["kind"] == "pole" else round(_u(rng, -40, 40), 2)
        dev["offset"] = round(_u(rng, -2.5, 2.5), 2)
        devices.append(dev)
    return devices, kind, form


def sample_mount(rng: np.random.Generator, pole_only: bool = False) -> dict[str, Any]:
    """A street-light/signal pole (most often) or a facade, optionally a corner (``pole_only``:
    always a pole, with the same draws, so the rest of the plan stays as it would be)."""
    if rng.random() < 0.8 or pole_only:
        return {
            "kind": "pole",
            "radius": _u(rng, 0.065, 0.12),
            "height": 0.0,
            "crossarm": 0.0 if rng.random() < 0.7 else -1.0,
            "crossarm_len": _u(rng, 2.0, 5.0),
        }
    return {
        "kind": "wall",
        "height": _u(rng, 9, 22),
        "corner": _u(rng, 0.4, 3.0) if rng.random() < 0.4 else 0.0,
        "ledge": _u(rng, 2.8, 3.8),
    }


def finish_mount(rng: np.random.Generator, mount: dict[str, Any], devices: list[dict[str, Any]]) -> None:
    """Pole height and clamp bands follow from the device heights."""
    top = max(d["z"] for d in devices)
    if mount["kind"] == "tripod":
        mount["height"] = round(top, 3)
    if mount["kind"] == "pole":
        mount["height"] = round(top + _u(rng, 0.4, 3.0), 3)
        mount["crossarm"] = round(mount["height"] - 0.6, 3) if mount["crossarm"] < 0 else 0.0
        mount["bands"] = [round(d["z"], 3) for d in devices if d["kind"] not in ("sign",)]
        for d in devices:
            d.pop("offset", None)


FRAMINGS: dict[str, tuple[float, float]] = {
    # (low, high) of the share of the frame's area the subject's bounding sphere fills
    "near": (0.02, 0.6),  # the camera framed on purpose: 14-77 % of the frame width
    "far": (0.012**2, 0.07**2),  # across the street, no zoom: 1.2-7 % of the width
}


def sample_view(
    rng: np.random.Generator, subject: dict[str, Any], mount: dict[str, Any], framing: str = "near"
) -> dict[str, Any]:
    """Where the citizen stands and how the phone frames the subject.

    ``framing`` is ``near`` (the camera fills 2-60 % of the frame), ``far`` (a street scene in
    which the camera spans about 1-7 % of the width) or ``mixed`` (half and half).
    """
    if framing not in (*FRAMINGS, "mixed"):
        raise ValueError(f"framing {framing!r}: choose near, far or mixed")
    if mount["kind"] in ("pole", "tripod"):
        rel = _u(rng, -110, 110) if rng.random() < 0.92 else _u(rng, 110, 250)
        az = (subject["azimuth"] + rel) % 360
    elif mount.get("corner"):
        az = _u(rng, 5, 70)  # stay on the open side of the corner wall
    else:
        az = _u(rng, -70, 70)
    eye_h = _u(rng, 1.4, 1.8) if rng.random() < 0.88 else _u(rng, 3.0, 7.0)
    view = {
        "azimuth": round(az, 2),
        "dist": round(_logu(rng, *((0.8, 6.0) if mount["kind"] == "tripod" else (3.0, 40.0))), 3),
        "eye_h": round(eye_h, 3),
        "fill": round(_logu(rng, *FRAMINGS["far" if framing == "far" else "near"]), 6),
        "shift_x": round(float(np.clip(rng.normal(0, 0.3), -0.6, 0.6)), 3),
        "shift_y": round(float(np.clip(rng.normal(0, 0.3), -0.6, 0.6)), 3),
        "roll": round(float(np.clip(rng.normal(0, 6), -20, 20)), 2),
        "min_lens": 24.0,
        "max_lens": 300.0,  # phones' 3x tele (77 mm) plus digital zoom
    }
    if framing == "mixed" and rng.random() < 0.5:  # own draw after the rest: near sets stay the same
        view["fill"] = round(_logu(rng, *FRAMINGS["far"]), 6)
    return view


def subject_point(mount: dict[str, Any], subject: dict[str, Any]) -> list[float]:
    """Rough world position of the subject (for occluders and lamps; Blender frames exactly)."""
    a = math.radians(subject["azimuth"])
    if mount["kind"] == "tripod":
        return [0.0, 0.0, subject["z"] + 0.05]
    if mount["kind"] == "pole":
        r = mount["radius"] + 0.25
        return [r * math.cos(a), r * math.sin(a), subject["z"] - 0.1]
    return [0.25 * math.cos(a), 0.25 * math.sin(a), subject["z"] - 0.1]


def sample_backdrop(rng: np.random.Generator, view_az: float, condition: str) -> dict[str, Any]:
    """Facades behind the subject, trees, background light poles and overhead wires."""
    back = view_az + 180.0
    buildings = []
    for i in range(int(rng.integers(2, 6))):
        theta = math.radians(back + _u(rng, -70, 70))
        dist, w, h = _u(rng, 14, 45), _u(rng, 12, 40), _u(rng, 8, 30)
        buildings.append(
            {
                "loc": _rgb([dist * math.cos(theta), dist * math.sin(theta), h / 2]),
                "w": round(w, 2),
                "h": round(h, 2),
                "rot": round(math.degrees(theta) - 90 + _u(rng, -15, 15), 2),
                "mat": _facade_material(rng, w, h, condition),
                "roof": bool(rng.random() < 0.6),
                "i": i,
            }
        )
    trees = []
    for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.3, 0.3, 0.25, 0.15]))):
        theta = math.radians(back + _u(rng, -90, 90))
        dist, h = _u(rng, 4, 25), _u(rng, 5, 12)
        x, y = dist * math.cos(theta), dist * math.sin(theta)
        clumps = [
            [_u(rng, -2, 2), _u(rng, -2, 2), _u(rng, h * 0.55, h), _u(rng, 1.2, 2.6)]
            for _ in range(int(rng.integers(3, 7)))
        ]
        trees.append({"x": round(x, 2), "y": round(y, 2), "h": round(h, 2), "clumps": clumps})
    poles = []
    for _ in range(int(rng.integers(0, 3))):
        theta = math.radians(back + _u(rng, -60, 60))
        dist = _u(rng, 12, 35)
        poles.append(_rgb([dist * math.cos(theta), dist * math.sin(theta), _u(rng, 7, 10)]))
    wires = []
    for _ in range(int(rng.choice([0, 1, 2, 4], p=[0.35, 0.3, 0.2, 0.15]))):
        a = math.radians(_u(rng, 0, 180))
        off = _u(rng, -12, 12)
        z = _u(rng, 6, 10)
        cx, cy = off * -math.sin(a), off * math.cos(a)
        wires.append(
            {
                "a": _rgb([cx - 40 * math.cos(a), cy - 40 * math.sin(a), z]),
                "b": _rgb([cx + 40 * math.cos(a), cy + 40 * math.sin(a), z + _u(rng, -1, 1)]),
                "sag": _u(rng, 0.5, 2.5),
                "r": _u(rng, 0.006, 0.015),
            }
        )
    return {"buildings": buildings, "trees": trees, "poles": poles, "wires": wires}


def sample_occluders(rng: np.random.Generator, fill: float) -> list[dict[str, Any]]:
    """Branches, wires or a sign partly (roughly 5-55 %) in front of the subject.

    Positions are relative to the line of sight (``t``: share of the way to the subject;
    ``off``/``size``: in half frame widths at that depth) because Blender decides the exact
    viewpoint when it frames the subject. The subject's radius is about ``sqrt(fill)`` half
    frame widths, so the occluder's inner edge is put between -0.1 and 0.8 of that radius.
    """
    occ: list[dict[str, Any]] = []
    radius = math.sqrt(fill)
    for _ in range(int(rng.choice([0, 1, 2], p=[0.55, 0.3, 0.15]))):
        kind = _pick(rng, {"leaves": 0.5, "wire": 0.35, "sign": 0.15})
        size = _u(rng, 0.4, 0.9) * (1.0 if kind == "leaves" else 0.6)
        inner = size * (0.7 if kind == "leaves" else 1.0)  # centre-to-inner-edge distance
        edge = radius * _u(rng, -0.1, 0.8)
        off = inner + edge if kind != "wire" else _u(rng, -0.8, 0.8)
        occ.append(
            {
                "kind": kind,
                "t": round(_u(rng, 0.35, 0.85), 3),
                "angle": round(_u(rng, 0, 360), 2),
                "off": round(off, 3),
                "size": round(size, 3),
                "tilt": round(_u(rng, -0.1, 0.1), 3),
                "sag": round(_u(rng, 0.2, 1.5), 3),
                "r": round(_u(rng, 0.006, 0.012), 4),
            }
        )
    return occ


def sample_post(rng: np.random.Generator, condition: str) -> dict[str, Any]:
    """Phone-camera effects applied in numpy/Pillow after rendering."""
    dark = condition in ("night", "dusk")
    return {
        "wb": _rgb(1.0 + rng.normal(0, 0.025, 3)),
        "gamma": round(_u(rng, 0.9, 1.1), 3),
        "denoise": round(_u(rng, 0.4, 0.8), 3),
        "saturation": round(_u(rng, 1.0, 1.45), 3),
        "contrast": round(_u(rng, 1.0, 1.2), 3),
        "noise": round(_u(rng, 2.0, 5.0) if dark else _u(rng, 0.3, 1.5), 3),
        "chroma_noise": round(_u(rng, 0.5, 2.0) if dark else _u(rng, 0.0, 0.8), 3),
        "motion_px": round(_u(rng, 0.5, 3.5), 3) if rng.random() < (0.4 if dark else 0.15) else 0.0,
        "motion_angle": round(_u(rng, 0, 180), 2),
        "blur": round(_u(rng, 0.0, 0.8), 3),
        "sharpen": round(_u(rng, 0.0, 1.2), 3) if rng.random() < 0.5 else 0.0,
        "vignette": round(_u(rng, 0.0, 0.35), 3),
        "jpeg_quality": int(rng.integers(60, 96)),
        "noise_seed": int(rng.integers(0, 2**31 - 1)),
        "distortion": round(_u(rng, -0.01, 0.05), 4) if rng.random() < 0.7 else 0.0,
        "ca": round(_u(rng, 0.0, 0.003), 5),
        "highlights": round(_u(rng, 1.0, 1.25), 3),
        "zoom": round(_u(rng, 1.4, 3.0), 3) if rng.random() < 0.2 else 0.0,
    }


def plan_image(
    seed: int,
    index: int,
    label: str,
    catalogue: Catalogue,
    *,
    size: int = 256,
    height: int | None = None,
    samples: int = 32,
    framing: str = "near",
    cutout: bool = False,
) -> Plan:
    """Everything needed to render and post-process image ``index`` of a seeded set.

    ``size`` is the frame's width and ``height`` its height (None: square). A ``cutout`` is the
    installation alone (a pole, never a facade; no backdrop, no occluders) on a transparent film.
    """
    entry = catalogue.get(label)
    rng = np.random.default_rng([seed, index])
    condition = _pick(rng, CONDITIONS)
    mount = sample_mount(rng, pole_only=cutout)
    devices, kind, form = sample_scene_devices(rng, entry, mount)
    finish_mount(rng, mount, devices)
    view = sample_view(rng, devices[0], mount, framing)
    centre = subject_point(mount, devices[0])
    light = sample_light(rng, condition, view["azimuth"])
    sample_hdri(rng, condition, light)
    if condition in ("dusk", "night"):
        light["lamps"] = night_lamps(rng, centre, view["azimuth"])
    materials = sample_materials(rng, condition)
    if mount["kind"] == "wall":
        materials["wall"] = _facade_material(rng, 14.0, mount["height"], condition)
    plan = {
        "index": index,
        "label": label,
        "subject_kind": kind,
        "form_factor": form,
        "condition": condition,
        "render_seed": int(rng.integers(0, 2**31 - 1)),
        "materials": materials,
        "mount": mount,
        "devices": devices,
        "view": view,
        "light": light,
        "backdrop": sample_backdrop(rng, view["azimuth"], condition),
        "occluders": sample_occluders(rng, view["fill"]),
        "post": sample_post(rng, condition),
        "size": size,
        "height": height or size,
        "samples": samples,
    }
    if cutout:
        plan.update(transparent=True, cutout=True, occluders=[])
    return plan
