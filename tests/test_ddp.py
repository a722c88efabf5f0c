"""Data-parallel training on CPU (issue 17): two processes under ``torchrun`` (gloo, Lightning
DDP) train like one process with the same global batch, write one set of outputs, and resume.

Two ``torchrun`` launches of a tiny recipe; most of the time is the processes' imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file
from synthetic import random_records

from foundation.data.cache import write_cache
from foundation.data.schema import TOP_LABELS
from foundation.training.recipe import recipe_from_dict
from foundation.training.run import train

ROOT = Path(__file__).resolve().parents[1]
GLOBAL_BATCH = 16

pytestmark = pytest.mark.slow  # two torchrun launches: ~60 s on 2 shared cores


def recipe(cache: Path, out: Path, batch_size: int, max_steps: int, **trainer: Any) -> dict:
    return {
        "name": "ddp",
        "data": {
            "cache": str(cache),
            "features": "kin",
            "max_particles": 8,
            "batch_size": batch_size,
        },
        "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
        "optimizer": {"schedule": "constant"},  # a resumed run may change max_steps
        "trainer": {
            "max_epochs": 1,
            "max_steps": max_steps,
            "accelerator": "cpu",
            "progress_bar": False,
            "log_every": 1,
            "checkpoint_every": 1,
            "eval_train_batches": 1,
            **trainer,
        },
        "output": {"folder": str(out), "plots": False},
    }


def torchrun(path: Path, *argv: str) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [*command, "-m", "foundation", "pretrain", str(path), "--no-progress", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def max_difference(a: Path, b: Path) -> float:
    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert first.keys() == second.keys()
    return max(float((first[k] - second[k]).abs().max()) for k in first)


def test_two_processes_train_like_one_and_resume(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    records = random_records(200, mean_particles=5, seed=5, label_names=TOP_LABELS)
    write_cache(records, cache, features="kin", max_particles=8)
    ddp = tmp_path / "ddp.json"
    per_device = {"strategy": "ddp", "devices": 2}
    ddp.write_text(json.dumps(recipe(cache, tmp_path / "ddp", GLOBAL_BATCH // 2, 2, **per_device)))
    torchrun(ddp)
    single = train(recipe_from_dict(recipe(cache, tmp_path / "one", GLOBAL_BATCH, 2)))

    run = tmp_path / "ddp"
    assert max_difference(run / "last", single.last) <= 1e-6
    ddp_history = json.loads((run / "history.json").read_text())
    one_history = json.loads((single.folder / "history.json").read_text())
    ddp_train, one_train = ddp_history["train"], one_history["train"]
    assert [step for step, _ in ddp_train] == [step for step, _ in one_train]
    for (_, found), (_, expected) in zip(ddp_train, one_train, strict=True):
        assert found == pytest.approx(expected, abs=1e-6)  # the mean over both ranks
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock

    torchrun(ddp, "--resume", "--set", "trainer.max_steps=4")
    longer = train(recipe_from_dict(recipe(cache, tmp_path / "one4", GLOBAL_BATCH, 4)))
    assert max_difference(run / "last", longer.last) <= 1e-6
