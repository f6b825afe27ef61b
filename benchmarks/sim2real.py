"""Sim-to-real ablation: which recipe, trained without any real camera photo, finds the real
cameras and keeps real negatives as ``no_camera``? One command trains every arm on the same
renders and the same real negatives and prints one table (renders and real photos apart).

    # 1. the real negatives' split (group-aware, seeded) and the training split's street photos
    #    as compositing backgrounds (so no held-out photo is ever inside a render)
    python benchmarks/sim2real.py backgrounds --real ../shared/data/real/manifest.csv --out bg.csv
    # 2. renders, half of them composited over those backgrounds
    camid data synth --out renders/s2r --n 1200 --seed 41 --size 256 --samples 10 \\
        --backgrounds bg.csv --background-share 0.5
    # 3. train and evaluate every arm (resumable: finished arms are kept)
    python benchmarks/sim2real.py run --renders renders/s2r --real ../shared/data/real/manifest.csv \\
        --out runs/sim2real [--arms head,ft_plain,ft] [--epochs 5] [--image-size 160] [--members 3]
    # 4. (optional) one model distilled from the ft arm's finished seeds
    python benchmarks/sim2real.py run ... --arms distill --members 1

Real surveillance-camera photos (every row not labelled ``no_camera``) are never trained on;
they and the held-out real negatives are the real evaluation set. Real negatives of the
training split are in every arm that says "+ real negatives".
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data.manifest import Manifest, Record, read_manifest, write_manifest
from data.split import SplitConfig, split_manifest
from model.checkpoint import load_checkpoint, save_checkpoint
from training.config import TrainConfig, resolve_config
from training.evaluate import evaluate
from training.train import train

log = logging.getLogger("sim2real")
RECIPE = Path(__file__).resolve().parents[1] / "training" / "recipes" / "sim2real.yaml"
REAL_RATIOS = (0.7, 0.15, 0.15)


@dataclass(frozen=True)
class Arm:
    """One recipe: how to train and on which renders, with or without real negatives."""

    title: str
    mode: str  # fast (linear head on frozen features) | finetune (every layer)
    renders: str  # all | plain (not composited over a real photo)
    real_negatives: bool
    teachers: str | None = None  # distil from this arm's seeds (their ensemble), trained before


ARMS: dict[str, Arm] = {
    "head": Arm("linear head, all renders + real negatives", "fast", "all", True),
    "ft_renders_only": Arm("full fine-tuning, all renders only", "finetune", "all", False),
    "ft_plain": Arm("full fine-tuning, plain renders + real negatives", "finetune", "plain", True),
    "ft": Arm("full fine-tuning, all renders + real negatives", "finetune", "all", True),
    "distill": Arm(
        "full fine-tuning, all renders + real negatives, distilled from the ft seeds' ensemble",
        "finetune",
        "all",
        True,
        teachers="ft",
    ),
}


@dataclass(frozen=True)
class RealSets:
    """The real photos, split once: negatives to train on, held-out negatives, cameras."""

    train_negatives: list[Record]
    test_negatives: list[Record]
    cameras: list[Record]
    manifest: Manifest


def real_sets(real_manifest: Path, seed: int = 0) -> RealSets:
    """Split the real negatives group-aware (70/15/15, seeded); cameras are evaluation only."""
    real = read_manifest(real_manifest)
    negatives = real.with_records([r for r in real.records if r.label == "no_camera"])
    split = split_manifest(negatives, SplitConfig(seed=seed, ratios=REAL_RATIOS), progress=False).manifest
    return RealSets(
        train_negatives=[r for r in split.records if r.split in ("train", "val")],
        test_negatives=[r for r in split.records if r.split == "test"],
        cameras=[r for r in real.records if r.label != "no_camera"],
        manifest=split,
    )


def absolute(manifest: Manifest, records: Sequence[Record]) -> list[Record]:
    """Records with absolute paths, so a manifest written elsewhere still finds the photos."""
    return [replace(r, path=str(manifest.resolve(r))) for r in records]


def write_backgrounds(real_manifest: Path, out: Path, seed: int = 0) -> Path:
    """The training split's street photos (not the handheld-camera close-ups) as compositing
    backgrounds for ``camid data synth --backgrounds``."""
    sets = real_sets(real_manifest, seed)
    rows = [r for r in sets.train_negatives if r.split == "train" and "handheld" not in r.path]
    write_manifest(sets.manifest.with_records(absolute(sets.manifest, rows)), out)
    return out


def check_backgrounds(render_dir: Path, sets: RealSets) -> None:
    """Refuse renders composited over a held-out real photo (the evaluation would be leaky)."""
    cfg = json.loads((render_dir / "synth_config.json").read_text(encoding="utf-8"))
    if not cfg.get("backgrounds"):
        return
    bg = read_manifest(Path(cfg["backgrounds"]))
    used = {bg.resolve(r).resolve() for r in bg.records}
    held_out = {sets.manifest.resolve(r).resolve() for r in sets.test_negatives}
    if used & held_out:
        raise SystemExit(
            f"{render_dir}: {len(used & held_out)} compositing background(s) are held-out real photos; "
            "make the backgrounds with `sim2real.py backgrounds` and the same --real and --seed"
        )


def arm_manifest(arm: Arm, renders: Manifest, sets: RealSets, out: Path) -> Path:
    """Renders (their own group-aware split) plus, for arms that use them, real negatives."""
    rows = [r for r in renders.records if arm.renders == "all" or "background:" not in r.license]
    rows = absolute(renders, rows)
    if arm.real_negatives:
        rows += absolute(sets.manifest, sets.train_negatives)
    write_manifest(renders.with_records(rows), out)
    return out


def eval_manifest(sets: RealSets, out: Path) -> Path:
    """Held-out real negatives and every real camera photo (split column ``test``)."""
    rows = [replace(r, split="test") for r in absolute(sets.manifest, [*sets.test_negatives, *sets.cameras])]
    write_manifest(sets.manifest.with_records(rows), out)
    return out


def group_interval(hits: np.ndarray, groups: Sequence[str], n_boot: int = 1000, seed: int = 0) -> list[float]:
    """95% bootstrap interval of a rate, resampling groups (a photo and its crops together)."""
    if len(hits) == 0:
        return [float("nan"), float("nan")]
    names = sorted(set(groups))
    index = {g: np.array([i for i, x in enumerate(groups) if x == g]) for g in names}
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(names), len(names))
        idx = np.concatenate([index[names[k]] for k in pick])
        rates.append(hits[idx].mean())
    lo, hi = np.percentile(rates, [2.5, 97.5])
    return [round(float(lo), 3), round(float(hi), 3)]


def rate(rows: Sequence[dict[str, str]], hit: Any) -> dict[str, Any]:
    """``k/n``, the rate and its group-bootstrap interval."""
    hits = np.array([bool(hit(r)) for r in rows], dtype=float)
    return {
        "k": int(hits.sum()),
        "n": len(rows),
        "rate": round(float(hits.mean()), 3) if len(rows) else None,
        "ci95": group_interval(hits, [r["group"] for r in rows]),
    }


def real_figures(pred_csv: Path) -> dict[str, Any]:
    """Cameras found (any camera label) and negatives kept, overall and for handheld cameras."""
    with pred_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cams = [r for r in rows if r["label"] != "no_camera"]
    negs = [r for r in rows if r["label"] == "no_camera"]
    handheld = [r for r in negs if "handheld" in r["path"]]
    return {
        "cameras_found": rate(cams, lambda r: r["pred"] != "no_camera"),
        "cameras_flag_or_review": rate(cams, lambda r: r["decision"] != "reject"),
        "negatives_kept": rate(negs, lambda r: r["pred"] == "no_camera"),
        "handheld_kept": rate(handheld, lambda r: r["pred"] == "no_camera"),
        "street_kept": rate([r for r in negs if r not in handheld], lambda r: r["pred"] == "no_camera"),
    }


def render_figures(pred_csv: Path) -> dict[str, Any]:
    """Accuracy (four classes) and camera-vs-no-camera agreement on the held-out renders."""
    with pred_csv.open(newline="", encoding="utf-8") as f:
        rows = [
            r for r in csv.DictReader(f) if "camid-synth" in r["group"] or r["group"].startswith("synth-")
        ]
    return {
        "accuracy": rate(rows, lambda r: r["pred"] == r["label"]),
        "camera_vs_none": rate(rows, lambda r: (r["pred"] == "no_camera") == (r["label"] == "no_camera")),
    }


def run_arm(
    name: str, arm: Arm, base: TrainConfig, renders: Manifest, sets: RealSets, out: Path
) -> dict[str, Any]:
    """Train one arm (or keep a finished run) and evaluate it on the real set and the renders."""
    run_dir = out / name
    manifest = arm_manifest(arm, renders, sets, out / f"{name}.csv")
    # the head arm is today's release recipe (camid train defaults); the others the recipe file
    config = base if arm.mode != "fast" else TrainConfig(image_size=base.image_size, seed=base.seed)
    if arm.teachers:
        config = replace(config, distill_from=[str(p) for p in seed_checkpoints(out, arm.teachers)])
    if not (run_dir / "metrics.json").is_file():
        train(manifest, run_dir, config, resume=(run_dir / "last.pt").is_file())
    seconds = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))["seconds"]
    checkpoint = run_dir / "checkpoint.pt"
    real_eval = evaluate(checkpoint, out / "real_eval.csv", run_dir / "eval-real", split="test", report=False)
    render_eval = evaluate(checkpoint, manifest, run_dir / "eval-renders", split="test", report=False)
    return {
        "arm": name,
        "title": arm.title,
        "train_s": round(float(seconds.get("train_total", 0.0))),
        "real": real_figures(real_eval.out_dir / "predictions.csv"),
        "renders": render_figures(render_eval.out_dir / "predictions.csv"),
    }


def seed_checkpoints(out: Path, name: str) -> list[Path]:
    """The finished seeds of arm ``name`` in ``out`` (``name``, ``name.s1``, ...), in seed order."""
    found, i = [], 0
    while (path := out / (name if i == 0 else f"{name}.s{i}") / "checkpoint.pt").is_file():
        found.append(path)
        i += 1
    if not found:
        raise SystemExit(f"no finished run of arm {name} in {out}: run --arms {name} --members K first")
    return found


def run_members(
    name: str, arm: Arm, base: TrainConfig, renders: Manifest, sets: RealSets, out: Path, members: int
) -> list[dict[str, Any]]:
    """``members`` runs of one arm that differ only in the training seed (``name``, ``name.s1``,
    ...: seeds ``base.seed + i``), each evaluated, then their ensemble (the mean of the members'
    probabilities) and their weight average as the last rows."""
    rows = []
    for i in range(members):
        member = name if i == 0 else f"{name}.s{i}"
        row = run_arm(member, arm, replace(base, seed=base.seed + i), renders, sets, out)
        rows.append({**row, "title": f"{arm.title}, training seed {base.seed + i}"})
    if members == 1:
        return [{**rows[0], "title": arm.title}]
    ens = out / f"{name}.x{members}"
    real_csv = mean_predictions(
        [out / r["arm"] / "eval-real" / "predictions.csv" for r in rows], ens / "real.csv"
    )
    ren_csv = mean_predictions(
        [out / r["arm"] / "eval-renders" / "predictions.csv" for r in rows], ens / "renders.csv"
    )
    rows.append(
        {
            "arm": ens.name,
            "title": f"{arm.title}: **ensemble of the {members} seeds** (mean probabilities)",
            "train_s": sum(r["train_s"] for r in rows),
            "real": real_figures(real_csv),
            "renders": render_figures(ren_csv),
        }
    )
    soup = out / f"{name}.soup{members}"
    weight_average([out / r["arm"] / "checkpoint.pt" for r in rows[:members]], soup / "checkpoint.pt")
    title = f"{arm.title}: the {members} seeds' weights averaged (one model)"
    rows.append(evaluated(soup.name, title, soup / "checkpoint.pt", out, out / f"{name}.csv"))
    return rows


def mean_predictions(member_csvs: Sequence[Path], out_csv: Path) -> Path:
    """One predictions CSV whose class probabilities are the members' means, ``pred`` their
    argmax and ``decision`` the members' most common decision (same photos, same order)."""
    tables = []
    for path in member_csvs:
        with path.open(newline="", encoding="utf-8") as f:
            tables.append(list(csv.DictReader(f)))
    fields = list(tables[0][0])
    classes = [c for c in fields if c.startswith("p_")]
    rows = []
    for same in zip(*tables, strict=True):
        if len({r["path"] for r in same}) != 1:
            raise ValueError(f"{member_csvs}: the members' predictions are not of the same photos")
        mean = {c: float(np.mean([float(r[c]) for r in same])) for c in classes}
        best = max(classes, key=lambda c: mean[c])
        decisions = [r["decision"] for r in same]
        rows.append(
            {
                **same[0],
                **{c: f"{v:.6f}" for c, v in mean.items()},
                "pred": best[2:],
                "confidence": f"{mean[best]:.6f}",
                "decision": max(decisions, key=decisions.count),  # a tie: the first member's
            }
        )
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with out_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return out_csv


def run_baseline(spec: str, out: Path, render_manifest: Path) -> dict[str, Any]:
    """An already trained model (``NAME=PATH``, e.g. today's release) on the same evaluation sets."""
    name, _, path = spec.partition("=")
    if not path or not Path(path).is_file():
        raise SystemExit(f"--baseline {spec!r}: give NAME=PATH of an exported model or checkpoint")
    return evaluated(name, f"{name} (trained before these renders)", path, out, render_manifest)


def evaluated(name: str, title: str, model: str | Path, out: Path, render_manifest: Path) -> dict[str, Any]:
    """A row for an already trained model (checkpoint or ONNX) on the real set and the renders."""
    real_eval = evaluate(model, out / "real_eval.csv", out / name / "eval-real", split="test", report=False)
    render_eval = evaluate(model, render_manifest, out / name / "eval-renders", split="test", report=False)
    return {
        "arm": name,
        "title": title,
        "train_s": 0,
        "real": real_figures(real_eval.out_dir / "predictions.csv"),
        "renders": render_figures(render_eval.out_dir / "predictions.csv"),
    }


def weight_average(checkpoints: Sequence[Path], out: Path) -> Path:
    """One classifier whose weights are the mean of the ``checkpoints``' (a "model soup": one
    model's cost instead of an ensemble's); its contract and calibration are the first one's."""
    loaded = [load_checkpoint(p) for p in checkpoints]
    model, meta = loaded[0]
    states = [m.state_dict() for m, _ in loaded]
    mean = {
        k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[0].items()
    }
    model.load_state_dict(mean)
    return save_checkpoint(out, model, meta.contract, config=meta.config)


def _cell(e: dict[str, Any]) -> str:
    if not e["n"]:
        return "–"
    lo, hi = e["ci95"]
    return f"{e['k']}/{e['n']} ({e['rate']:.2f} [{lo:.2f}, {hi:.2f}])"


def table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown: real photos first, renders apart."""
    head = (
        "| arm | real cameras found | real negatives kept | handheld kept | street kept "
        "| renders: accuracy | renders: camera vs none | train |\n|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in results:
        real, ren = r["real"], r["renders"]
        lines.append(
            f"| {r['title']} | {_cell(real['cameras_found'])} | {_cell(real['negatives_kept'])} "
            f"| {_cell(real['handheld_kept'])} | {_cell(real['street_kept'])} | {_cell(ren['accuracy'])} "
            f"| {_cell(ren['camera_vs_none'])} | {r['train_s'] / 60:.0f} min |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    sets = real_sets(args.real, args.seed)
    check_backgrounds(args.renders, sets)
    renders = read_manifest(args.renders / "manifest.csv")
    renders = split_manifest(renders, SplitConfig(seed=args.seed), progress=False).manifest
    args.out.mkdir(parents=True, exist_ok=True)
    eval_manifest(sets, args.out / "real_eval.csv")
    # --train-seed changes only the training's randomness (initial head, batches, augmentation),
    # not which real photos are held out: the spread over it says how much a figure is luck
    train_seed = args.seed if args.train_seed is None else args.train_seed
    base = resolve_config(args.config, epochs=args.epochs, image_size=args.image_size, seed=train_seed)
    unknown = [a for a in args.arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s) {', '.join(unknown)}; choose from {', '.join(ARMS)}")
    results = []
    if args.baseline:
        renders_csv = arm_manifest(ARMS["ft"], renders, sets, args.out / "renders_split.csv")
        results += [run_baseline(spec, args.out, renders_csv) for spec in args.baseline]
    for name in args.arms:
        log.info("arm %s: %s", name, ARMS[name].title)
        results += run_members(name, ARMS[name], base, renders, sets, args.out, args.members)
        (args.out / "sim2real.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    text = table(results)
    (args.out / "sim2real.md").write_text(text + "\n", encoding="utf-8")
    print(f"renders: {args.renders} ({len(renders.records)}); real: {args.real}")  # noqa: T201
    print(
        f"real evaluation: {len(sets.cameras)} camera photos, {len(sets.test_negatives)} held-out negatives"
    )  # noqa: T201
    print(text)  # noqa: T201
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    bg = sub.add_parser("backgrounds", help="compositing backgrounds from the real training split")
    bg.add_argument("--real", type=Path, required=True)
    bg.add_argument("--out", type=Path, required=True)
    bg.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run", help="train and evaluate the arms")
    r.add_argument("--renders", type=Path, required=True, help="a `camid data synth` output folder")
    r.add_argument("--real", type=Path, required=True, help="the real photos' manifest")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--arms", type=lambda s: s.split(","), default=list(ARMS))
    r.add_argument("--config", type=Path, default=RECIPE)
    r.add_argument("--epochs", type=int)
    r.add_argument("--image-size", type=int)
    r.add_argument("--seed", type=int, default=0, help="the splits' seed (real negatives and renders)")
    r.add_argument("--train-seed", type=int, help="the training's seed (default: --seed)")
    r.add_argument(
        "--members",
        type=int,
        default=1,
        help="train each arm with this many training seeds and add their ensemble",
    )
    r.add_argument("--baseline", action="append", default=[], help="NAME=MODEL evaluated alongside")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "backgrounds":
        print(write_backgrounds(args.real, args.out, args.seed))  # noqa: T201
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
