"""Orchestrate a synthetic set: plan images, render them with Blender in chunks, post-process,
write the manifest. Deterministic for a seed and resumable (finished JPEGs are skipped).

Each JPEG has a facts sidecar (``synth-SEED-INDEX.json`` beside it: frame size and the pixel box
of every device Blender saw), written before the JPEG; the manifest's ``boxes`` column is built
from the sidecars, so a resumed run gets the boxes of images rendered by an earlier one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from data.boxes import LabeledBox, format_boxes
from data.files import atomic_write
from data.labels import LabelSet, load_labels
from data.manifest import Manifest, Record, write_manifest
from data.synth.catalogue import Catalogue, load_catalogue
from data.synth.devices import builder_names
from data.synth.params import Plan, class_schedule, plan_image
from data.synth.postprocess import distort_facts, finish_image
from data.synth.render import (
    BlenderRenderError,
    facts_path,
    find_blender,
    read_facts,
    run_blender_job,
    write_job,
)

log = logging.getLogger(__name__)

SOURCE = "camid-synth"
LICENSE = "CC0-1.0"
MANIFEST_NAME = "manifest.csv"
CONFIG_NAME = "synth_config.json"
LOOSE_KEYS = {"n", "threads", "code"}  # may change between runs into one folder (warned)
CODE_FILES = ("params.py", "devices.py", "draw.py", "blender_scene.py", "postprocess.py")
# a device box is dropped when less than this share of it is inside the frame (a sliver at the
# edge does not look like the device) or when it is thinner than MIN_BOX_PX in either direction
MIN_VISIBLE = 0.3
MIN_BOX_PX = 2.0


@dataclass(frozen=True)
class SynthConfig:
    """Settings of one synthetic set (``synthesize(out_dir, config)``).

    ``mix`` None means the catalogue's shares; ``classes`` empty means every class of the
    labels file; ``catalogue``/``labels`` None mean ``data/cameras.yaml``/``data/labels.yaml``;
    ``threads`` None means all cores (pixels depend on it, so it is fixed by default).
    """

    n: int
    seed: int = 0
    size: int = 256
    samples: int = 32
    height: int | None = None
    framing: str = "near"
    classes: tuple[str, ...] = ()
    workers: int = 1
    chunk: int = 25
    mix: Mapping[str, float] | None = None
    threads: int | None = 2
    blender: str | None = None
    backgrounds: str | Path | None = None
    background_share: float = 0.5
    cutouts: bool = False
    progress: bool = True
    catalogue: Path | None = None
    labels: Path | None = None

    def __post_init__(self) -> None:
        if min(self.n, self.samples, self.chunk, self.workers) < 1 or min(self.size, self.height or 16) < 16:
            raise ValueError(
                f"need n, samples, chunk, workers >= 1 and size >= 16 (got n={self.n}, "
                f"samples={self.samples}, chunk={self.chunk}, workers={self.workers}, size={self.size}, "
                f"height={self.height})"
            )
        if self.framing not in ("near", "far", "mixed"):
            raise ValueError(f"framing {self.framing!r}: choose near, far or mixed")
        if self.cutouts and self.backgrounds:
            raise ValueError("cutouts are transparent PNGs for pasting in training: drop --backgrounds")


def code_version(catalogue: Catalogue | None = None) -> str:
    """Short hash of the files (and catalogue) that decide what a render looks like."""
    h = hashlib.sha256()
    for name in CODE_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    if catalogue is not None:
        h.update(repr(catalogue.classes).encode())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Background:
    """A real street photo to composite renders over, with its licence."""

    path: Path
    license: str
    source: str


def _manifest_backgrounds(csv_path: Path, inside: Path | None = None) -> list[Background]:
    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # a background must not show a camera of its own, or the render's label would be wrong
    rows = [r for r in rows if r.get("label", "no_camera") == "no_camera"]
    out = [Background(csv_path.parent / r["path"], r.get("license", ""), r.get("source", "")) for r in rows]
    if inside is not None:
        out = [b for b in out if b.path.resolve().is_relative_to(inside.resolve())]
    return sorted((b for b in out if b.path.is_file()), key=lambda b: str(b.path))


def load_backgrounds(spec: str | Path) -> list[Background]:
    """Backgrounds from a manifest CSV, or a folder (licences from the manifest that lists it).

    A folder without its own ``manifest.csv`` takes licences from a manifest in a parent folder
    (e.g. ``real/streetcomplete_negatives`` -> ``real/manifest.csv``).
    """
    spec = Path(spec)
    if spec.is_file():
        found = _manifest_backgrounds(spec)
    elif spec.is_dir():
        parents = [spec, *list(spec.resolve().parents)[:2]]
        csvs = [p / MANIFEST_NAME for p in parents if (p / MANIFEST_NAME).is_file()]
        if not csvs:
            raise FileNotFoundError(
                f"{spec}: no manifest.csv here or above; licences are needed for backgrounds"
            )
        found = _manifest_backgrounds(csvs[0], inside=spec)
    else:
        raise FileNotFoundError(
            f"{spec}: no such folder or manifest; pass a folder of photos or a manifest CSV"
        )
    if not found:
        raise ValueError(f"{spec}: no background photos found")
    return found


def plan_set(
    n: int,
    seed: int,
    *,
    size: int = 256,
    samples: int = 32,
    classes: Sequence[str] | None = None,
    mix: Mapping[str, float] | None = None,
    backgrounds: Sequence[Background] = (),
    background_share: float = 0.5,
    catalogue: Catalogue | None = None,
    labels: LabelSet | None = None,
    labels_path: Path | None = None,
    height: int | None = None,
    framing: str = "near",
    cutouts: bool = False,
) -> list[Plan]:
    """Plans for images 0..n-1 (pure: same arguments give the same plans). ``cutouts``: each
    image is the installation alone on a transparent film, saved as an RGBA PNG.

    Every class of the labels (or of ``classes``) must have a catalogue entry; otherwise this
    fails before planning, naming the classes and the catalogue file to add them to.
    """
    cat = catalogue or load_catalogue()
    known = labels or load_labels(labels_path)
    names = list(classes) if classes else list(known.names)
    unknown = [c for c in names if c not in known]
    if unknown:
        raise ValueError(f"unknown classes {unknown}; choose from {', '.join(known.names)}")
    cat.require(names, labels_path or "data/labels.yaml")
    schedule = class_schedule(n, names, mix or cat.mix)
    plans = [
        plan_image(
            seed, i, c, cat, size=size, height=height, samples=samples, framing=framing, cutout=cutouts
        )
        for i, c in enumerate(schedule)
    ]
    for plan in plans:
        ext = "png" if cutouts else "jpg"
        plan["image"] = f"images/{plan['label']}/synth-{seed}-{plan['index']:06d}.{ext}"
        plan["group"] = f"synth-{seed}-{plan['index']:06d}"
        if backgrounds:
            pick_background(plan, seed, backgrounds, background_share)
        for dev in plan["devices"]:  # fail before rendering if a box would have no single label
            cat.class_of_kind(dev["kind"], known, plan["label"])
    return plans


def pick_background(plan: Plan, seed: int, backgrounds: Sequence[Background], share: float) -> None:
    """Mark a plan for compositing over one of the backgrounds (own RNG stream, deterministic)."""
    rng = np.random.default_rng([seed, plan["index"], 1])
    if rng.random() >= share or plan["mount"]["kind"] != "pole":  # a facade would hide the photo
        return
    bg = backgrounds[int(rng.integers(0, len(backgrounds)))]
    plan["transparent"] = True
    plan["background"] = str(bg.path)
    plan["background_license"] = bg.license
    plan["background_source"] = bg.source


def facts_file(out_dir: Path, plan: Plan) -> Path:
    """The facts sidecar of a planned image (beside its JPEG)."""
    return Path(out_dir, plan["image"]).with_suffix(".json")


def synth_boxes(
    plan: Plan, facts: Mapping[str, Any], catalogue: Catalogue, labels: LabelSet
) -> list[LabeledBox]:
    """The labelled boxes of one render, from its facts (Blender's device boxes).

    The framed subject carries the image's label, every other device the class of its kind
    (:meth:`Catalogue.class_of_kind`; look-alikes get ``labels.negative``). Boxes less than
    :data:`MIN_VISIBLE` inside the frame or under :data:`MIN_BOX_PX` are dropped, and so are
    cameras of classes that ``labels`` lacks.
    """
    out = []
    for item in facts.get("boxes", []):
        x0, y0, x1, y1 = (float(v) for v in item["box"])
        if item["visible"] < MIN_VISIBLE or min(x1 - x0, y1 - y0) < MIN_BOX_PX:
            continue
        index = item["device"]
        if index is not None and plan["devices"][index].get("subject"):
            label = plan["label"]
        else:
            label = catalogue.class_of_kind(item["kind"], labels, plan["label"])
        if label is not None:
            out.append(LabeledBox(label, (x0, y0, x1, y1), item["kind"]))
    return out


def plan_record(plan: Plan, boxes: Sequence[LabeledBox] = ()) -> Record:
    """The manifest row of a planned image (with the boxes of its render)."""
    license_, source = LICENSE, SOURCE
    if plan.get("background"):
        license_ = f"render {LICENSE}; background: {plan['background_license']}"
        source = f"{SOURCE} over {plan['background_source'] or plan['background']}"
    extra = {
        "form_factor": plan["form_factor"],
        "condition": plan["condition"],
        "subject": plan["subject_kind"],
        # the share of the frame the camera (or, for no_camera, the confuser) is framed to fill
        "subject_frac": f"{plan['view']['fill']:.6g}",
        "boxes": format_boxes(boxes),
    }
    return Record(
        path=plan["image"],
        label=plan["label"],
        group=plan["group"],
        source=source,
        license=license_,
        extra=extra,
    )


def check_config(out_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to resume into a folder rendered with other settings (mixed sets are wrong)."""
    path = out_dir / CONFIG_NAME
    if path.is_file():
        old = {"cutouts": False, **json.loads(path.read_text(encoding="utf-8"))}  # sets from before cutouts
        diff = {k: (old.get(k), v) for k, v in config.items() if k not in LOOSE_KEYS and old.get(k) != v}
        for key in sorted(LOOSE_KEYS - {"n"}):
            if old.get(key) != config.get(key):
                log.warning(
                    "%s: resuming with %s=%s (was %s); new images may differ in look",
                    out_dir,
                    key,
                    config.get(key),
                    old.get(key),
                )
        if diff:
            raise ValueError(
                f"{out_dir} holds a set rendered with other settings {diff}; use a new --out folder"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=1, sort_keys=True), encoding="utf-8")


def chunks(items: Sequence[Plan], size: int) -> list[list[Plan]]:
    """Split into lists of at most ``size`` (one Blender process each)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def render_chunk(
    chunk: Sequence[Plan],
    out_dir: Path,
    blender: str,
    *,
    size: int,
    height: int | None = None,
    samples: int,
    threads: int | None,
    on_done: Any,
) -> None:
    """Render one chunk with one Blender process and post-process each frame as it lands."""
    work = out_dir / "_work"
    raws = [work / f"raw-{p['group']}.png" for p in chunk]
    by_raw = {str(r.resolve()): p for r, p in zip(raws, chunk, strict=True)}
    job = write_job(
        work / f"job-{chunk[0]['group']}.json",
        chunk,
        [r.resolve() for r in raws],
        size=size,
        height=height,
        samples=samples,
        threads=threads,
        builders=builder_names(),
    )

    def saved(png: Path) -> None:
        plan = by_raw[str(png.resolve())]
        if plan.get("cutout"):  # kept as rendered: the phone's optics come where it is pasted
            write_facts(facts_file(out_dir, plan), read_facts(png))
            atomic_write(out_dir / plan["image"], lambda tmp: shutil.copyfile(png, tmp))
        else:
            bg = Path(plan["background"]) if plan.get("background") else None
            facts = distort_facts(read_facts(png), plan["post"])  # boxes follow the lens distortion
            write_facts(facts_file(out_dir, plan), facts)  # before the JPEG that marks it done
            finish_image(png, out_dir / plan["image"], plan["post"], bg)
        png.unlink(missing_ok=True)
        facts_path(png).unlink(missing_ok=True)
        on_done(plan)

    run_blender_job(job, blender, on_saved=saved)
    job.unlink(missing_ok=True)
    Path(str(job) + ".done.json").unlink(missing_ok=True)


def write_facts(path: Path, facts: Mapping[str, Any]) -> None:
    """Write a facts sidecar atomically (temp file, fsync, rename)."""
    text = json.dumps(facts, sort_keys=True)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def is_rendered(out_dir: Path, plan: Plan) -> bool:
    """Both the JPEG and its facts sidecar exist (JPEGs of older camid versions have none)."""
    return (out_dir / plan["image"]).is_file() and facts_file(out_dir, plan).is_file()


def render_missing(
    plans: Sequence[Plan],
    out_dir: Path,
    *,
    size: int,
    height: int | None = None,
    samples: int,
    workers: int,
    chunk: int,
    threads: int | None,
    blender: str | None,
    progress: bool,
) -> int:
    """Render every plan whose JPEG or facts sidecar is missing; returns how many were rendered."""
    todo = [p for p in plans if not is_rendered(out_dir, p)]
    if not todo:
        return 0
    stale = sum((out_dir / p["image"]).is_file() for p in todo)
    if stale:
        log.warning("%s: %d JPEG(s) have no facts sidecar (no boxes); rendering them again", out_dir, stale)
    exe = find_blender(blender)
    lock = threading.Lock()
    bar = tqdm(
        total=len(plans), initial=len(plans) - len(todo), desc="synth", unit="img", disable=not progress
    )

    def on_done(_plan: Plan) -> None:
        with lock:
            bar.update(1)

    errors: list[str] = []
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [
                pool.submit(
                    render_chunk,
                    c,
                    out_dir,
                    exe,
                    size=size,
                    height=height,
                    samples=samples,
                    threads=threads,
                    on_done=on_done,
                )
                for c in chunks(todo, chunk)
            ]
            for f in futures:
                try:
                    f.result()
                except BlenderRenderError as e:  # keep going; the rest of the set is still useful
                    log.error("%s", e)
                    errors.append(str(e).splitlines()[0])
    finally:
        bar.close()
    if errors:
        raise BlenderRenderError(
            f"{len(errors)} chunk(s) failed (re-run to retry them): " + "; ".join(errors)
        )
    shutil.rmtree(out_dir / "_work", ignore_errors=True)
    return len(todo)


def synthesize(out_dir: str | Path, config: SynthConfig) -> Path:
    """Render ``config.n`` synthetic street photos into ``out_dir``; returns the manifest path.

    Re-running with the same config renders only the images that are missing. Pixels are
    identical for the same seed, samples and ``threads`` (Cycles' result depends on the thread
    count, so it is fixed by default; use ``workers`` to use more cores; ``None`` = all cores).
    """
    out = Path(out_dir)
    catalogue = load_catalogue(config.catalogue)
    labels = load_labels(config.labels)
    bgs = load_backgrounds(config.backgrounds) if config.backgrounds else []
    plans = plan_set(
        config.n,
        config.seed,
        size=config.size,
        samples=config.samples,
        classes=config.classes,
        mix=config.mix,
        backgrounds=bgs,
        background_share=config.background_share,
        catalogue=catalogue,
        labels=labels,
        labels_path=config.labels,
        height=config.height,
        framing=config.framing,
        cutouts=config.cutouts,
    )
    check_config(out, _recorded_config(config, catalogue))
    t0 = time.perf_counter()
    done = render_missing(
        plans,
        out,
        size=config.size,
        height=config.height,
        samples=config.samples,
        workers=config.workers,
        chunk=config.chunk,
        threads=config.threads,
        blender=config.blender,
        progress=config.progress,
    )
    if done:
        secs = time.perf_counter() - t0
        log.info("rendered %d images in %.1f s (%.2f images/s)", done, secs, done / secs)
    records = []
    for p in plans:
        facts = json.loads(facts_file(out, p).read_text(encoding="utf-8"))
        records.append(plan_record(p, synth_boxes(p, facts, catalogue, labels)))
    return write_manifest(Manifest(out.resolve(), records), out / MANIFEST_NAME)


def _recorded_config(config: SynthConfig, catalogue: Catalogue) -> dict[str, Any]:
    """What ``synth_config.json`` records (resuming with other values is refused or warned)."""
    return {
        "n": config.n,
        "seed": config.seed,
        "size": config.size,
        "height": config.height or config.size,
        "framing": config.framing,
        "samples": config.samples,
        "classes": list(config.classes),
        "mix": dict(config.mix or catalogue.mix),
        "backgrounds": str(config.backgrounds or ""),
        "background_share": config.background_share,
        "cutouts": config.cutouts,
        "threads": config.threads,
        "code": code_version(catalogue),
    }
