"""``camid model``: the model registry (``CAMID_MODELS_DIR``): list, show, add, promote, rollback;
``shadow-report`` compares a shadow model's verdicts with the live ones.

``promote CANDIDATE`` runs the promotion gate: the candidate and the live model side by side on
the verified submissions (through the training export) and on ``--benchmark MANIFEST``; it
prints the table and refuses a candidate worse beyond the interval unless ``--force --reason``.
A server started with the same ``CAMID_MODELS_DIR`` switches to the promoted model by itself.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from serve.engine import ModelError
from serve.lifecycle.promote import promote
from serve.lifecycle.registry import Entry, ModelRegistry, RegistryError

__all__ = ["main", "rescore_command"]

PROG = "camid model"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(prog: str, text: str) -> None:
    sys.stderr.write(f"{prog}: {text}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, help="the registry folder (default: CAMID_MODELS_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered models; * marks the live one")
    show = sub.add_parser("show", help="a model's contract facts, card and comparisons (default: live)")
    show.add_argument("model", nargs="?", help="registry id (default: the live model)")
    add = sub.add_parser("add", help="register an exported .onnx file (with its card) without promoting it")
    add.add_argument("path", type=Path)
    add.add_argument(
        "--card", type=Path, help="its model card (default: MODEL_CARD.md or <stem>.md beside it)"
    )
    pro = sub.add_parser("promote", help="evaluate a candidate against the live model and make it live")
    pro.add_argument("candidate", help="registry id or an exported .onnx file")
    pro.add_argument(
        "--benchmark", type=Path, help="a fixed benchmark manifest evaluated beside the verified photos"
    )
    pro.add_argument(
        "--data-dir", type=Path, help="the server's data folder (default: CAMID_DATA_DIR, else ./var)"
    )
    pro.add_argument("--skip-verified", action="store_true", help="evaluate on --benchmark only (no store)")
    pro.add_argument(
        "--baseline", type=Path, help="the model to beat before any promotion (default: CAMID_MODEL_PATH)"
    )
    pro.add_argument("--force", action="store_true", help="promote even if the gate refuses (needs --reason)")
    pro.add_argument("--reason", default="", help="why (kept in the registry's history)")
    pro.add_argument("--by", help="who promotes (default cli:<your user name>)")
    pro.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the intervals")
    shadow = sub.add_parser(
        "shadow-report", help="where the shadow model (CAMID_SHADOW_MODEL) and the live one disagree"
    )
    shadow.add_argument(
        "--data-dir", type=Path, help="the server's data folder (default: CAMID_DATA_DIR, else ./var)"
    )
    shadow.add_argument("--limit", type=int, default=50, help="disagreements listed (newest first)")
    shadow.add_argument("--json", action="store_true", help="the whole report as JSON")
    back = sub.add_parser("rollback", help="make the previous live model live again")
    back.add_argument("--reason", default="", help="why (kept in the registry's history)")
    back.add_argument("--by", help="who rolls back (default cli:<your user name>)")
    return parser


def _registry(models_dir: Path | None) -> ModelRegistry:
    if models_dir is None:
        from serve.settings import Settings

        models_dir = Settings().models_dir
    if models_dir is None:
        raise RegistryError("no registry: pass --models-dir DIR or set CAMID_MODELS_DIR")
    return ModelRegistry(models_dir)


def _summary(entry: Entry, live: str | None) -> str:
    c = entry.contract
    mark = "*" if entry.id == live else " "
    classes = len(c.get("labels") or [])
    return f"{mark} {entry.id:<40} {c.get('name', '')} {c.get('version', '')}  {classes} classes"


def _show(registry: ModelRegistry, model: str | None) -> int:
    entry = registry.get(model) if model else registry.live()
    if entry is None:
        raise RegistryError(f"{registry.root}: no live model yet; name one (camid model list)")
    c = entry.contract
    facts: dict[str, Any] = {
        "id": entry.id,
        "live": registry.state()["live"] == entry.id,
        "file": str(entry.model_path),
        **{k: c.get(k) for k in ("name", "version", "architecture", "thresholds", "temperature", "metrics")},
        "labels": [cl.get("name") for cl in c.get("labels") or []],
        "card": str(entry.card_path) if entry.card_path else None,
        "comparisons": [str(p) for p in entry.comparisons],
        "history": [h for h in registry.state()["history"] if h.get("id") == entry.id],
    }
    _out(json.dumps(facts, indent=2, ensure_ascii=False))
    return 0


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Any]:
    if args.skip_verified:
        yield None
        return
    from serve.moderators import open_cli_store

    store, _ = open_cli_store(args.data_dir, PROG)
    try:
        yield store
    finally:
        store.close()


def _baseline(args: argparse.Namespace) -> Path:
    if args.baseline is not None:
        return Path(args.baseline)
    from serve.settings import Settings

    return Settings().model_path


def _promote(registry: ModelRegistry, args: argparse.Namespace) -> int:
    if args.skip_verified and args.benchmark is None:
        raise RegistryError("--skip-verified needs --benchmark MANIFEST: the gate needs photos")
    by = args.by or f"cli:{getpass.getuser()}"
    with _store(args) as store:
        outcome = promote(
            registry,
            args.candidate,
            store=store,
            benchmark=args.benchmark,
            baseline=_baseline(args),
            force=args.force,
            reason=args.reason,
            by=by,
            n_boot=args.resamples,
        )
    _out(outcome.table)
    _out(f"comparison saved: {outcome.saved}")
    if not outcome.promoted:
        _err(PROG, f"{outcome.entry.id} not promoted; fix the model, or override: --force --reason '...'")
        return 1
    forced = " (gate overridden: " + args.reason + ")" if outcome.comparison["forced"] else ""
    _out(f"{outcome.entry.id} is live{forced}; servers on {registry.root} switch to it within seconds")
    return 0


def _shadow_report(args: argparse.Namespace) -> int:
    from serve.lifecycle.shadow import shadow_report
    from serve.moderators import open_cli_store

    store, _ = open_cli_store(args.data_dir, PROG)
    try:
        report = shadow_report(store, args.limit)
    finally:
        store.close()
    if args.json:
        _out(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    for version, m in report["models"].items():
        _out(
            f"shadow {version}: {m['scored']} scored, same label {m['same_label']}, same decision "
            f"{m['same_decision']}; of {m['verified']} verified: live right {m['live_right']}, "
            f"shadow right {m['shadow_right']}"
        )
    if not report["models"]:
        _out("no shadow verdicts yet: start the server with CAMID_SHADOW_MODEL=candidate.onnx")
    for r in report["disagreements"]:
        live, shadow = r["live"], r["shadow"]
        _out(
            f"{r['id']}  live {live['label']}/{live['decision']}  "
            f"shadow {shadow['label']}/{shadow['decision']}  moderators {r['moderators'] or '-'}"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    """Carry out one parsed ``camid model`` command."""
    if args.command == "shadow-report":
        return _shadow_report(args)
    registry = _registry(args.models_dir)
    if args.command == "list":
        live = registry.state()["live"]
        entries = registry.entries()
        for entry in entries:
            _out(_summary(entry, live))
        if not entries:
            _out(f"no models in {registry.root} yet: camid model add FILE or camid model promote FILE")
        return 0
    if args.command == "show":
        return _show(registry, args.model)
    if args.command == "add":
        entry = registry.add(args.path, args.card)
        _out(f"registered {entry.id} in {entry.folder}")
        return 0
    if args.command == "promote":
        return _promote(registry, args)
    record = registry.rollback(args.by or f"cli:{getpass.getuser()}", args.reason)
    _out(f"{record['id']} is live again (was {record['previous']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``camid model``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    from serve.moderators import StoreCheckError

    try:
        return run(args)
    except (RegistryError, ModelError, StoreCheckError) as exc:
        _err(PROG, str(exc))
        return 2


def rescore_command(store: Any, args: argparse.Namespace, prog: str) -> int:
    """``camid submissions rescore``: the live model (or ``--model``) over the pending submissions."""
    from tqdm import tqdm

    from serve.engine import Engine
    from serve.lifecycle.reload import live_model_path
    from serve.lifecycle.rescore import pending_to_rescore, rescore
    from serve.settings import Settings

    path = args.model or live_model_path(Settings())
    try:
        engine = Engine.load(path, threads=1)
    except ModelError as exc:
        _err(prog, str(exc))
        return 2
    total = len(pending_to_rescore(store, engine))
    with tqdm(total=total, desc=f"rescore with {engine.info.version}", unit="photo") as bar:
        job = rescore(store, engine, workers=args.workers, progress=lambda _: bar.update(1))
    c = job.counts
    _out(
        f"re-scored {c['changed'] + c['same']} of {job.total} pending submission(s) with "
        f"{engine.info.name} {engine.info.version}: {c['changed']} changed verdict, {c['same']} same, "
        f"{c['skipped']} skipped (reviewed meanwhile), {c['failed']} unreadable; earlier verdicts kept"
    )
    return 1 if c["failed"] else 0
