"""The ``camid`` command: one entry point whose subcommands live in the package that owns them.

Subcommands are imported lazily, so ``camid predict`` and ``camid serve`` work on a serving-only
install, and the ones that need PyTorch say what to install when it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable

# name -> (module:function, needs the training extra, one-line help)
COMMANDS: dict[str, tuple[str, bool, str]] = {
    "data": ("data.cli:main", False, "import, validate, dedup, split and render training data"),
    "train": ("training.cli:train_main", True, "train a model on a manifest"),
    "evaluate": ("training.cli:evaluate_main", True, "evaluate a checkpoint or ONNX model on a manifest"),
    "export": ("model.cli:export_main", True, "export a checkpoint to a self-describing ONNX file"),
    "predict": ("serve.predict:main", False, "classify photos with an ONNX model (no torch needed)"),
    "serve": ("serve.app:main", False, "run the HTTP service"),
    "moderators": ("serve.moderators:main", False, "manage moderator accounts and exports"),
    "submissions": ("serve.submissions_cli:main", False, "delete, purge and re-score submissions"),
    "model": ("serve.lifecycle.cli:main", False, "the model registry: list, show, promote, rollback"),
    "intake": ("serve.intake.cli:main", False, "store photos mailed to an IMAP inbox or posted (X archives)"),
    "registry": ("serve.registry.cli:main", False, "import the official camera list and compare it"),
}
TRAINING_MODULES = ("torch", "timm", "albumentations", "onnx")
TRAIN_EXTRA_HINT = (
    "this command needs the training dependencies: pip install -e '.[train]' "
    "(or `make test`, which installs everything into .venv)"
)


def _usage() -> str:
    lines = ["usage: camid COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<11} {help_}" for name, (_, _, help_) in COMMANDS.items()]
    lines += ["", "Run `camid COMMAND --help` for a command's options."]
    return "\n".join(lines)


def _missing_training_modules() -> list[str]:
    return [m for m in TRAINING_MODULES if importlib.util.find_spec(m) is None]


def _load(target: str, needs_train: bool) -> Callable[[list[str]], int]:
    if needs_train and (missing := _missing_training_modules()):
        raise SystemExit(f"camid: {TRAIN_EXTRA_HINT} (missing: {', '.join(missing)})")
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        heavy = {"torch", "timm", "torchvision", "albumentations", "onnx", "matplotlib"}
        if needs_train or (e.name or "").split(".")[0] in heavy:
            raise SystemExit(f"camid: {TRAIN_EXTRA_HINT} (missing module: {e.name})") from e
        raise
    func: Callable[[list[str]], int] = getattr(module, func_name)
    return func


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``camid COMMAND ...`` to the command's own ``main``."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"camid: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, needs_train, _ = COMMANDS[name]
    return _load(target, needs_train)(rest)


if __name__ == "__main__":
    raise SystemExit(main())
