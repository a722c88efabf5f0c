"""Reliability of recipes and runs (issue 17): bounded recipes, locked run folders, resume.

Each test reproduces a failure measured on main (alias bombs, lost concurrent runs, raw
tracebacks on bad checkpoints, an epoch loss that forgot the batches before a resume).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import interruptible
from synthetic import random_records

from foundation.data.cache import write_cache
from foundation.data.schema import TOP_LABELS
from foundation.hub.errors import CheckpointError
from foundation.locking import OutputLockedError, exclusive_lock
from foundation.training.callbacks import StopAfterSteps
from foundation.training.recipe import MAX_PARTICLES, RecipeError, load_recipe, recipe_from_dict
from foundation.training.run import train
from foundation.training.run_folder import lock_run_folder
from foundation.training.typed import MAX_NODES, short_repr

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64 random top/QCD jets, ``kin`` features, 8 particle slots."""
    folder = tmp_path_factory.mktemp("reliability") / "cache"
    records = random_records(64, mean_particles=5, seed=5, label_names=TOP_LABELS)
    write_cache(records, folder, features="kin", max_particles=8)
    return folder


def recipe_data(cache: Path, out: Path, **trainer: Any) -> dict[str, Any]:
    return {
        "name": "reliability",
        "data": {"cache": str(cache), "features": "kin", "max_particles": 8, "batch_size": 8},
        "model": {"backbone": "pfn-tiny", "heads": {"top": {"type": "jet_classification"}}},
        "trainer": {
            "max_epochs": 1,
            "progress_bar": False,
            "log_every": 1,
            "checkpoint_every": 2,
            "eval_train_batches": 1,
            **trainer,
        },
        "output": {"folder": str(out), "plots": False},
    }


def write_recipe(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


# --------------------------------------------------------------------------- bounded recipes
BOMB = "\n".join(
    ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
)


def test_alias_bomb_in_a_recipe_is_refused_at_once(tmp_path: Path, cache: Path) -> None:
    base = recipe_data(cache, tmp_path / "run")
    for where in ("description: *a8", "model:\n  heads:\n    top:\n      kwargs: {hidden: *a8}"):
        text = BOMB.replace("a0:", "anchors:\n  a0:").replace("\na", "\n  a") + "\n" + where
        path = tmp_path / "bomb.yaml"
        path.write_text(text + "\n")
        with pytest.raises(RecipeError, match=f"expands to more than {MAX_NODES}") as error:
            load_recipe(path)
        assert len(str(error.value)) < 400
    assert base  # the bomb never reached the recipe checks


def test_alias_bomb_in_an_override_is_refused(tmp_path: Path, cache: Path) -> None:
    path = write_recipe(tmp_path / "r.yaml", recipe_data(cache, tmp_path / "run"))
    value = "[" + ", ".join(["&a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"] + ["*a"] * 3) + "]"
    assert load_recipe(path, [f"model.heads.top.kwargs.hidden={value}"])  # small aliases are fine
    bomb = "{" + BOMB.replace("\n", ", ") + "}"
    with pytest.raises(RecipeError, match="expands to more than"):
        load_recipe(path, [f"model.heads.top.kwargs.extra={bomb}"])


def test_messages_never_format_a_whole_value() -> None:
    shared = list(range(10))
    for _ in range(8):
        shared = [shared] * 10  # 10**9 leaves, reachable in microseconds by repr
    assert len(short_repr(shared)) < 200
    assert len(short_repr("x" * 10**6)) < 200


def test_a_huge_misspelt_key_gives_a_short_message(tmp_path: Path, cache: Path) -> None:
    data = recipe_data(cache, tmp_path / "run")
    data["trainer"]["x" * 100_000] = 1
    with pytest.raises(RecipeError, match="unknown key") as error:
        recipe_from_dict(data)
    assert len(str(error.value)) < 1000


# ------------------------------------------------------------------------ recipe validation
@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("optimizer.lr=.nan", "optimizer.lr: expected a finite number"),
        ("optimizer.lr=.inf", "optimizer.lr: expected a finite number"),
        ("optimizer.lr=1e308", r"optimizer.lr: expected a learning rate in \[1e-12, 10\]"),
        ("optimizer.lr=0", r"optimizer.lr: expected a learning rate"),
        ("finetune.head_lr_multiplier=1e300", "head_lr_multiplier"),
        ("data.max_particles=100000000", f"expected at most {MAX_PARTICLES}"),
        (
            "model.heads.top.kwargs.dropout=.nan",
            "model.heads.top.kwargs.dropout: expected a finite",
        ),
        ("model.heads.top.weight=-1", "weight: expected >= 0"),
        ("optimizer.betas=[0.9, 1.5]", r"optimizer.betas: expected two values in \[0, 1\)"),
    ],
)
def test_bad_numbers_are_refused_by_the_recipe_check(
    tmp_path: Path, cache: Path, override: str, match: str
) -> None:
    path = write_recipe(tmp_path / "r.yaml", recipe_data(cache, tmp_path / "run"))
    with pytest.raises(RecipeError, match=match):
        load_recipe(path, [override])


def test_integer_too_large_for_a_float_is_a_recipe_error(tmp_path: Path, cache: Path) -> None:
    data = recipe_data(cache, tmp_path / "run")
    data["optimizer"] = {"lr": 10**400}
    with pytest.raises(RecipeError, match=r"optimizer\.lr: expected a finite number"):
        recipe_from_dict(data)


# ------------------------------------------------------------------------------- run locks
def test_second_run_into_a_busy_folder_is_refused(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "run"
    busy = pytest.raises(OutputLockedError, match="run folder is being written by another")
    with lock_run_folder(folder), busy:  # the lock as a first run would hold it
        train(recipe_from_dict(recipe_data(cache, folder)))
    assert not folder.exists()  # the refused run wrote nothing


def test_lock_of_a_killed_process_does_not_block(tmp_path: Path) -> None:
    target = tmp_path / "out"
    code = textwrap.dedent(
        f"""
        import sys, time
        from foundation.locking import exclusive_lock
        with exclusive_lock({str(target)!r}):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(OutputLockedError, match=f"pid {process.pid}"), exclusive_lock(target):
            pass
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    with exclusive_lock(target) as lock_file:  # the lock died with its holder
        assert lock_file.is_file()
    assert not lock_file.exists()  # and is removed by a clean exit


# ----------------------------------------------------------------------------------- resume
def test_truncated_or_crafted_checkpoint_is_a_clear_error(tmp_path: Path, cache: Path) -> None:
    recipe = recipe_from_dict(recipe_data(cache, tmp_path / "run", max_epochs=2))
    with pytest.raises(RuntimeError, match="simulated interruption"):
        train(recipe, callbacks=[StopAfterSteps(3)])
    last = tmp_path / "run/checkpoints/last.ckpt"
    good = last.read_bytes()
    last.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=r"last\.ckpt: cannot be read as a checkpoint"):
        train(recipe, resume=True)

    class Crafted:
        def __reduce__(self) -> tuple:
            return (print, ("pickle code ran",))

    torch.save({"state_dict": Crafted()}, last)
    with pytest.raises(CheckpointError, match="cannot be read as a checkpoint"):
        train(recipe, resume=True)
    torch.save({"state_dict": {"w": torch.zeros(2)}, "global_step": 1, "loops": {}}, last)
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint"):
        train(recipe, resume=True)
    last.write_bytes(good)
    assert train(recipe, resume=True).metrics["test"]


def test_run_killed_before_its_first_checkpoint_resumes(tmp_path: Path, cache: Path) -> None:
    recipe = recipe_from_dict(recipe_data(cache, tmp_path / "run", checkpoint_every=100))
    with pytest.raises(RuntimeError, match="simulated interruption"):
        train(recipe, callbacks=[StopAfterSteps(1)])
    assert (tmp_path / "run/recipe.yaml").is_file()
    assert not (tmp_path / "run/checkpoints/last.ckpt").exists()
    result = train(recipe, resume=True)  # a resubmitted batch job: starts the run
    assert (result.folder / "metrics.json").is_file()


@pytest.mark.slow  # interrupted and resumed training
def test_epoch_loss_of_a_resumed_epoch_covers_every_batch(tmp_path: Path, cache: Path) -> None:
    def history(folder: Path) -> list[list[float]]:
        return json.loads((folder / "history.json").read_text())["train"]

    whole = train(recipe_from_dict(recipe_data(cache, tmp_path / "whole", max_epochs=2)))
    per_epoch = int(history(whole.folder)[0][0])
    broken = recipe_from_dict(
        recipe_data(cache, tmp_path / "broken", max_epochs=2, checkpoint_every=1)
    )
    with pytest.raises(RuntimeError, match="simulated interruption"):
        train(broken, callbacks=[StopAfterSteps(per_epoch + 2)])  # 2 batches into epoch 1
    assert (
        torch.load(broken.run_folder / "checkpoints/last.ckpt", weights_only=True)["global_step"]
        == per_epoch + 2
    )
    resumed = train(broken, resume=True)
    expected, found = history(whole.folder), history(resumed.folder)
    assert [step for step, _ in found] == [step for step, _ in expected]
    for (_, a), (_, b) in zip(expected, found, strict=True):
        assert b == pytest.approx(a, abs=1e-6)


# ----------------------------------------------------------------------------------- Ctrl-C
@pytest.mark.slow  # a training subprocess: ~40 s on 2 shared cores (imports dominate)
def test_ctrl_c_stops_training_in_one_line_and_resumes(tmp_path: Path, cache: Path) -> None:
    folder = tmp_path / "run"
    path = write_recipe(tmp_path / "r.json", recipe_data(cache, folder, max_epochs=1000))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "foundation", "pretrain", str(path), "--no-progress"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 120
    while not (folder / "checkpoints/last.ckpt").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert "resumes from its last checkpoint with the same command and --resume" in err
    step = torch.load(folder / "checkpoints/last.ckpt", weights_only=True)["global_step"]
    recipe = load_recipe(path, [f"trainer.max_steps={step + 1}"])
    assert train(recipe, resume=True).metrics["test"]  # the lock went with the process


@pytest.mark.slow  # three training runs
def test_a_run_stopped_by_max_steps_trains_longer_exactly(tmp_path: Path, cache: Path) -> None:
    def last(folder: Path) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return load_file(str(folder / "last/model.safetensors"))

    constant = {"schedule": "constant"}  # the schedule of a longer run is the same
    data = recipe_data(cache, tmp_path / "short", max_steps=2)
    short = recipe_from_dict({**data, "optimizer": constant})
    train(short)  # stops mid-epoch: Lightning marks the epoch finished
    train(short.with_overrides(["trainer.max_steps=4"]), resume=True)
    data = recipe_data(cache, tmp_path / "long", max_steps=4)
    long = train(recipe_from_dict({**data, "optimizer": constant}))
    a, b = last(tmp_path / "short"), last(long.folder)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0.0


def test_simulated_pt_range_beyond_the_beams_is_a_recipe_error(tmp_path: Path) -> None:
    data = recipe_data(tmp_path / "cache", tmp_path / "run")
    data["data"] = {"simulate": {"process": "qcd", "pt_range": [1e9, 2e9]}}
    with pytest.raises(RecipeError, match=r"data\.simulate\.pt_range: expected 0 < low < high"):
        recipe_from_dict(data)
    data["data"] = {"simulate": {"process": "qcd", "workers": 0}}
    with pytest.raises(RecipeError, match=r"data\.simulate\.workers: expected a positive"):
        recipe_from_dict(data)


def test_lightning_refusals_are_recipe_errors(tmp_path: Path, cache: Path) -> None:
    for setting, match in (
        (("strategy", "ddpp"), "invalid strategy name"),
        (("devices", [5]), "should be an int"),
    ):
        recipe = recipe_from_dict(recipe_data(cache, tmp_path / "run", **dict([setting])))
        with pytest.raises(RecipeError, match=rf"trainer: accelerator=.*{match}"):
            train(recipe)
