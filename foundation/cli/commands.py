"""The sub-commands of ``foundation``: a name, a one-line summary and a loader each.

The top-level parser lists every command from this table without importing any of them, so
``foundation --help`` (and an error in one command) never pays for the imports of the others
(torch, ONNX Runtime, Lightning...). Only the command being run is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType


@dataclass(frozen=True)
class Command:
    """One sub-command.

    Attributes:
        name: what the user types (``foundation NAME``).
        summary: the one-line help shown by ``foundation --help`` (the command module's own
            ``help=`` says the same; a test keeps them equal).
        load: imports the command's module, which has ``register(subparsers)``.
    """

    name: str
    summary: str
    load: Callable[[], ModuleType]


def _quickstart() -> ModuleType:
    from foundation.cli import quickstart

    return quickstart


def _simulate() -> ModuleType:
    from foundation.cli import simulate

    return simulate


def _pretrain() -> ModuleType:
    from foundation.cli import pretrain

    return pretrain


def _finetune() -> ModuleType:
    from foundation.cli import finetune

    return finetune


def _evaluate() -> ModuleType:
    from foundation.cli import evaluate

    return evaluate


def _study() -> ModuleType:
    from foundation.cli import study

    return study


def _hub() -> ModuleType:
    from foundation.cli import hub

    return hub


def _baseline() -> ModuleType:
    from foundation.cli import baseline

    return baseline


def _export() -> ModuleType:
    from foundation.cli import export

    return export


def _bench() -> ModuleType:
    from foundation.cli import bench

    return bench


COMMANDS: tuple[Command, ...] = (
    Command(
        "quickstart",
        "see the whole product in minutes: simulate, fine-tune, compare, export",
        _quickstart,
    ),
    Command(
        "simulate",
        "make detector-level jets with Pythia 8 + a parametrized detector + FastJet",
        _simulate,
    ),
    Command("pretrain", "pretrain a backbone from a recipe (recipes/pretrain_*.yaml)", _pretrain),
    Command(
        "finetune",
        "fine-tune a pretrained backbone from a recipe (recipes/top_tagging.yaml...)",
        _finetune,
    ),
    Command(
        "evaluate",
        "evaluate a run or checkpoint on jet files (metrics.json + PNG plots)",
        _evaluate,
    ),
    Command("study", "studies over many training runs", _study),
    Command("hub", "list, inspect and download pretrained checkpoints", _hub),
    Command("baseline", "train and evaluate gradient-boosted trees on jet substructure", _baseline),
    Command("export", "export a checkpoint to ONNX (parity-checked, metadata embedded)", _export),
    Command("bench", "time PyTorch against ONNX Runtime (throughput and latency)", _bench),
)
"""Every sub-command, in the order ``foundation --help`` lists them."""
