"""Run Blender headless on chunks of planned images (torch-free; standard library only).

Blender is started once per chunk (start-up costs seconds), renders every image of the chunk
and prints ``Saved: '<path>'`` after each one, which drives the progress callback.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SCENE_SCRIPT = Path(__file__).with_name("blender_scene.py")
INSTALL_HINT = (
    "install Blender (Debian/Ubuntu: `apt-get install -y blender`, or `make blender`), "
    "or point CAMID_BLENDER / --blender at the executable"
)


class BlenderNotFoundError(RuntimeError):
    """Raised when no Blender executable can be found."""


class BlenderRenderError(RuntimeError):
    """Raised when a Blender process exits with an error."""


def find_blender(explicit: str | None = None) -> str:
    """Path of the Blender executable: ``explicit``, ``$CAMID_BLENDER`` or ``blender`` on PATH."""
    candidate = explicit or os.environ.get("CAMID_BLENDER") or "blender"
    found = shutil.which(candidate)
    if found is None:
        raise BlenderNotFoundError(f"blender not found ({candidate!r}); {INSTALL_HINT}")
    return found


def facts_path(raw_png: Path) -> Path:
    """Where Blender writes an image's facts (framing, device boxes) before rendering it."""
    return raw_png.with_suffix(".json")


def read_facts(raw_png: Path) -> dict[str, Any]:
    """The facts Blender wrote for a raw render (``{"width", "height", "boxes": [...], ...}``)."""
    path = facts_path(raw_png)
    if not path.is_file():
        raise BlenderRenderError(f"{raw_png}: Blender wrote no facts file {path.name}")
    facts: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return facts


def job_images(plans: Sequence[dict[str, Any]], raw_paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The per-image entries of a Blender job (plan fields the scene script reads + output paths)."""
    keys = (
        "materials",
        "mount",
        "devices",
        "view",
        "light",
        "backdrop",
        "occluders",
        "render_seed",
        "transparent",
    )
    return [
        {**{k: p[k] for k in keys if k in p}, "out": str(raw), "facts": str(facts_path(raw))}
        for p, raw in zip(plans, raw_paths, strict=True)
    ]


def write_job(
    path: Path,
    plans: Sequence[dict[str, Any]],
    raw_paths: Sequence[Path],
    *,
    size: int,
    height: int | None = None,
    samples: int,
    threads: int | None,
    builders: Mapping[str, str],
) -> Path:
    """Write a Blender job JSON (deterministic: sorted keys, no timestamps).

    ``builders`` maps each device kind to its builder function in ``blender_scene.py``
    (``data.synth.devices.builder_names()``; the script itself imports nothing from camid).
    """
    job = {
        "render": {"width": size, "height": height or size, "samples": samples, "threads": threads or 0},
        "builders": dict(builders),
        "images": job_images(plans, raw_paths),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job, sort_keys=True, indent=1), encoding="utf-8")
    return path


def run_blender_job(
    job_path: Path,
    blender: str,
    on_saved: Callable[[Path], None] | None = None,
    timeout_s: float | None = None,
) -> None:
    """Render one job with a headless Blender; call ``on_saved(png)`` as each image is written."""
    cmd = [
        blender,
        "-b",
        "--factory-startup",
        "-noaudio",
        "--python-exit-code",
        "1",
        "-P",
        str(SCENE_SCRIPT),
        "--",
        str(job_path),
    ]
    log.debug("running %s", " ".join(cmd))
    tail: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-40:], line.rstrip()]
            if line.startswith("Saved: ") and on_saved is not None:
                on_saved(Path(line.split("'")[1]))
        code = proc.wait(timeout=timeout_s)
    if code != 0:
        msg = "\n".join(tail)
        raise BlenderRenderError(f"blender exited with {code} on {job_path}; last output:\n{msg}")
