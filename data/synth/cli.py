"""``camid data synth``: render synthetic street photos of surveillance cameras with Blender."""

from __future__ import annotations

import argparse
import collections
import logging
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from data.manifest import read_manifest
from data.synth.catalogue import DEFAULT_CATALOGUE_PATH
from data.synth.render import BlenderNotFoundError, BlenderRenderError


def parse_mix(text: str | None, default: Mapping[str, float]) -> dict[str, float] | None:
    """``"huawei_ipc6625_z30=0.3,no_camera=0.2"`` -> mapping (unlisted classes keep ``default``)."""
    if not text:
        return None
    mix = dict(default)
    for item in text.split(","):
        name, _, share = item.partition("=")
        try:
            mix[name.strip()] = float(share)
        except ValueError:
            raise SystemExit(f"--mix: {item!r} is not NAME=SHARE (e.g. no_camera=0.2)") from None
    return mix


def build_parser() -> argparse.ArgumentParser:
    """Arguments of `camid data synth`."""
    p = argparse.ArgumentParser(prog="camid data synth", description=__doc__)
    p.add_argument("--out", required=True, type=Path, help="output folder (manifest.csv + images/)")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="random seed: same seed, same set")
    p.add_argument("--size", type=int, default=256, help="image width in pixels (default 256)")
    p.add_argument("--height", type=int, help="image height in pixels (default: --size, a square)")
    p.add_argument(
        "--framing",
        choices=["near", "far", "mixed"],
        default="near",
        help="near: the camera fills 2-60%% of the frame; far: a street scene where it spans "
        "about 1-7%% of the width (use a phone-sized frame, e.g. --size 1600 --height 1200); "
        "mixed: half and half (default near)",
    )
    p.add_argument("--classes", nargs="+", help="classes to render (default: all in the labels file)")
    p.add_argument("--labels", type=Path, help="labels YAML (default: data/labels.yaml)")
    p.add_argument(
        "--catalogue",
        type=Path,
        default=DEFAULT_CATALOGUE_PATH,
        help="camera catalogue YAML: what to render per class (default: data/cameras.yaml)",
    )
    p.add_argument("--mix", help="class shares, e.g. huawei_ipc6625_z30=0.3,no_camera=0.2")
    p.add_argument("--samples", type=int, default=32, help="Cycles samples per pixel (default 32)")
    p.add_argument("--workers", type=int, default=1, help="parallel Blender processes (default 1)")
    p.add_argument("--chunk", type=int, default=25, help="images per Blender process (default 25)")
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="render threads per Blender process (default 2; pixels depend on it; 0 = all cores)",
    )
    p.add_argument("--blender", help="Blender executable (default: $CAMID_BLENDER or blender on PATH)")
    p.add_argument("--backgrounds", help="folder or manifest CSV of real street photos to composite over")
    p.add_argument("--background-share", type=float, default=0.5, help="share of images composited (0..1)")
    p.add_argument(
        "--cutouts",
        action="store_true",
        help="render each installation alone (a pole, no backdrop) as a transparent PNG, for "
        "the detector's cut-paste training (det_paste_from in the recipe)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid data synth``; returns a process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from data.synth.catalogue import load_catalogue
    from data.synth.generate import SynthConfig, synthesize

    t0 = time.perf_counter()
    try:
        catalogue = load_catalogue(args.catalogue)
        config = SynthConfig(
            n=args.n,
            seed=args.seed,
            size=args.size,
            height=args.height,
            framing=args.framing,
            samples=args.samples,
            classes=tuple(args.classes or ()),
            workers=args.workers,
            chunk=args.chunk,
            mix=parse_mix(args.mix, catalogue.mix),
            threads=args.threads or None,
            blender=args.blender,
            backgrounds=args.backgrounds,
            background_share=args.background_share,
            cutouts=args.cutouts,
            progress=not args.quiet,
            catalogue=args.catalogue,
            labels=args.labels,
        )
        path = synthesize(args.out, config)
    except (BlenderNotFoundError, BlenderRenderError, ValueError, FileNotFoundError) as e:
        print(f"camid data synth: {e}", file=sys.stderr)
        return 2
    secs = time.perf_counter() - t0
    counts = collections.Counter(r.label for r in read_manifest(path).records)
    print(f"manifest: {path}")
    for label, count in sorted(counts.items()):
        print(f"  {label}: {count}")
    print(f"elapsed {secs:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
