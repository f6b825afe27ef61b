"""Inference benchmark: the naive torch pipeline vs camid's (draft decode + prepare + onnxruntime).

Generates 12-MP phone-like JPEGs (~4 MB) and 640x480 photos, then measures per-photo latency
(p50/p95 at batch 1), throughput at batch 8 (camid decodes a batch in one thread per core, as
`camid predict` does), and the decode / preprocess / model split for:
  naive       PIL full decode + torchvision Resize/CenterCrop/ToTensor/Normalize + torch eager
  camid-fp32  data.images.load_image(min_side) + data.preprocess.prepare + ORT fp32
  camid-int8  the same with the static-INT8 model
Targets: camid >= 3x naive on 12 MP; model <= 25% of decode on 12 MP; int8 >= 1.5x fp32 model-only.

    .venv/bin/python benchmarks/inference.py [--checkpoint CKPT] [--photos 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from detect_pipelines import DetectPipelines  # noqa: E402  (benchmarks/ is on sys.path when run)
from photos import phone_photo
from PIL import Image
from torchvision import transforms

from data.contract import ModelContract
from data.images import load_image
from data.labels import load_labels
from data.preprocess import ResizeRule, decode_hint, prepare
from model.checkpoint import load_checkpoint
from model.export import manifest_inputs, quantize_int8, random_inputs, to_onnx
from model.factory import CamidNet, create_model
from serve.engine import session_options


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


class Pipelines:
    def __init__(self, model: CamidNet, meta: ModelContract, fp32: bytes, int8: bytes, threads: int) -> None:
        self.model, self.rule, self.threads = model.eval(), meta.resize, threads
        size = meta.resize.size
        self.tv = transforms.Compose([
            transforms.Resize(int(size / 0.875)), transforms.CenterCrop(size), transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ])  # fmt: skip
        self.sessions = {
            "camid-fp32": ort.InferenceSession(
                fp32, session_options(threads), providers=["CPUExecutionProvider"]
            ),
            "camid-int8": ort.InferenceSession(
                int8, session_options(threads), providers=["CPUExecutionProvider"]
            ),
        }

    def naive_decode(self, path: Path) -> Image.Image:
        return Image.open(path).convert("RGB")

    def naive_prep(self, img: Image.Image) -> torch.Tensor:
        return self.tv(img)

    def naive_model(self, batch: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            feat = self.model.backbone.forward_features(batch)
            return self.model.classifier(feat.mean((2, 3))).numpy()

    def camid_decode(self, path: Path) -> Image.Image:
        return load_image(path, min_side=decode_hint(self.rule))

    def camid_prep(self, img: Image.Image) -> np.ndarray:
        return prepare(img, self.rule)

    def camid_model(self, name: str, batch: np.ndarray) -> np.ndarray:
        return self.sessions[name].run(["logits"], {"image": batch})[0]

    def stages(self, name: str) -> tuple[Callable, Callable, Callable]:  # type: ignore[type-arg]
        if name == "naive":
            return self.naive_decode, self.naive_prep, lambda xs: self.naive_model(torch.stack(xs))
        return self.camid_decode, self.camid_prep, lambda xs: self.camid_model(name, np.stack(xs))


def measure(p: Pipelines | DetectPipelines, name: str, photos: list[Path], repeats: int) -> dict[str, float]:
    decode, prep, run = p.stages(name)
    warm = prep(decode(photos[0]))
    for _ in range(2):  # first calls allocate / pick kernels
        run([warm])
        run([warm] * 8)
    dec, pre, mod, total = [], [], [], []
    for path in photos:
        for _ in range(repeats):
            t0 = time.perf_counter()
            img = decode(path)
            t1 = time.perf_counter()
            x = prep(img)
            t2 = time.perf_counter()
            run([x])
            t3 = time.perf_counter()
            dec.append(t1 - t0)
            pre.append(t2 - t1)
            mod.append(t3 - t2)
            total.append(t3 - t0)
    batch = (photos * 8)[:8]
    # camid decodes a batch's photos in parallel threads, as `camid predict` does; the naive
    # pipeline is the single loop a user would write.
    workers = 1 if name.startswith("naive") else threads_of(p)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        t = time.perf_counter()
        for _ in range(repeats):
            run(list(pool.map(lambda path: prep(decode(path)), batch)))
        throughput = 8 * repeats / (time.perf_counter() - t)
    ms = lambda v: 1000 * float(np.median(v))  # noqa: E731
    return {
        "p50": 1000 * float(np.percentile(total, 50)),
        "p95": 1000 * float(np.percentile(total, 95)),
        "decode": ms(dec),
        "prep": ms(pre),
        "model": ms(mod),
        "tput8": throughput,
    }


def threads_of(p: Pipelines | DetectPipelines) -> int:
    return p.threads if isinstance(p, Pipelines) else THREADS[0]


THREADS = [2]


def build(args: argparse.Namespace, folder: Path) -> tuple[CamidNet, ModelContract, bytes, bytes]:
    if args.checkpoint:
        model, checkpoint = load_checkpoint(args.checkpoint)
        meta = checkpoint.contract
    else:
        labels = load_labels()
        model = create_model(args.arch, num_classes=len(labels.names), pretrained=None).eval()
        meta = ModelContract(labels=labels, architecture=args.arch, resize=ResizeRule(args.size))
    fp32 = to_onnx(model, meta.resize.size)
    calib = (
        manifest_inputs(args.calibration, meta, limit=32)
        if args.calibration
        else random_inputs(16, meta.resize.size)
    )
    int8 = quantize_int8(fp32, calib)  # benchmark only: the agreement gate lives in export_onnx
    return model, meta, fp32.SerializeToString(), int8.SerializeToString()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--arch", default="efficientnet_lite0")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--calibration", type=Path, help="manifest for INT8 calibration (default: random)")
    ap.add_argument("--photos", type=int, default=4, help="photos per resolution")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--threads", type=int, default=None, help="torch and ORT threads (default: physical cores)"
    )
    ap.add_argument("--detector", type=Path, help="exported camera detector .onnx (a zoom pair too)")
    ap.add_argument("--detector-checkpoint", type=Path, help="its detector checkpoint (naive pipeline)")
    ap.add_argument("--zoom-checkpoint", type=Path, help="its crop classifier checkpoint (naive pipeline)")
    ap.add_argument(
        "--all-crops", action="store_true",
        help="a zoom pair crops all its max_proposals peaks on every photo (worst-case cost)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    from serve.engine import physical_cores

    threads = args.threads or physical_cores()
    THREADS[0] = threads
    if args.detector and not args.detector_checkpoint:
        ap.error("--detector needs --detector-checkpoint (and --zoom-checkpoint for a zoom pair)")
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = {
            "12MP": [phone_photo(folder / f"big{i}.jpg", (4032, 3024), i) for i in range(args.photos)],
            "640x480": [phone_photo(folder / f"vga{i}.jpg", (640, 480), 100 + i) for i in range(args.photos)],
        }
        mb = np.mean([p.stat().st_size for p in sets["12MP"]]) / 1e6
        model, meta, fp32, int8 = build(args, folder)
        pipes = Pipelines(model, meta, fp32, int8, threads)
        print(
            f"{meta.architecture} @ {meta.resize.size}px, {threads} threads, torch {torch.__version__}, "
            f"onnxruntime {ort.__version__}; 12-MP JPEGs average {mb:.1f} MB; "
            f"model files fp32 {len(fp32) / 1e6:.1f} MB, int8 {len(int8) / 1e6:.1f} MB"
        )
        print(
            f"{'photos':<8} {'pipeline':<11} {'p50 ms':>8} {'p95 ms':>8} {'decode':>8} {'prep':>7} "
            f"{'model':>7} {'b8 img/s':>9}"
        )
        res: dict[tuple[str, str], dict[str, float]] = {}
        for set_name, photos in sets.items():
            for name in ("naive", "camid-fp32", "camid-int8"):
                r = res[set_name, name] = measure(pipes, name, photos, args.repeats)
                print(
                    f"{set_name:<8} {name:<11} {r['p50']:8.1f} {r['p95']:8.1f} {r['decode']:8.1f} "
                    f"{r['prep']:7.1f} {r['model']:7.1f} {r['tput8']:9.1f}"
                )
        if args.detector:
            det = DetectPipelines(
                args.detector, args.detector_checkpoint, args.zoom_checkpoint, args.all_crops
            )
            print(f"camera pipeline: {det.describe()}")
            for name in ("naive-detect", "camid-detect"):
                r = res["12MP", name] = measure(det, name, sets["12MP"], args.repeats)
                print(
                    f"{'12MP':<8} {name:<12} {r['p50']:7.1f} {r['p95']:8.1f} {r['decode']:8.1f} "
                    f"{r['prep']:7.1f} {r['model']:7.1f} {r['tput8']:9.1f}"
                )
    big = {k[1]: v for k, v in res.items() if k[0] == "12MP"}
    speedup = big["camid-fp32"]["tput8"] / big["naive"]["tput8"]
    latency_gain = big["naive"]["p50"] / big["camid-fp32"]["p50"]
    model_share = big["camid-fp32"]["model"] / big["naive"]["decode"]
    int8_gain = big["camid-fp32"]["model"] / big["camid-int8"]["model"]
    print(f"camid-fp32 vs naive on 12 MP, throughput at batch 8: {speedup:.1f}x (target >= 3x)")
    print(f"camid-fp32 vs naive on 12 MP, single-photo latency (p50): {latency_gain:.1f}x")
    print(
        f"model / full decode on 12 MP: {100 * model_share:.0f}% (target <= 25%); "
        f"model / draft decode: {100 * big['camid-fp32']['model'] / big['camid-fp32']['decode']:.0f}%"
    )
    print(f"int8 vs fp32 model-only: {int8_gain:.2f}x (target >= 1.5x)")
    if args.detector:
        cost = big["camid-detect"]["p50"] / big["camid-fp32"]["p50"]
        vs_naive = big["camid-detect"]["tput8"] / big["naive-detect"]["tput8"]
        vs_naive_p50 = big["naive-detect"]["p50"] / big["camid-detect"]["p50"]
        print(
            f"camid-detect vs camid-fp32 (today's predict) on 12 MP, p50 per photo: {cost:.2f}x "
            "(target <= 2.5x)"
        )
        print(
            f"camid-detect vs naive-detect on 12 MP, throughput at batch 8: {vs_naive:.1f}x (target >= 3x); "
            f"single-photo latency: {vs_naive_p50:.1f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
