"""A new user's first hour: the README's commands and snippets, a fast CLI, clear typo errors."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import (
    random_records,
    write_jetclass_root,
    write_quark_gluon_npz,
    write_top_landscape_hdf5,
)

from foundation import load_pretrained
from foundation.cli import main
from foundation.cli.commands import COMMANDS
from foundation.data.readers import read_jets
from foundation.errors import DataError
from foundation.hub import CheckpointError, resolve_checkpoint
from foundation.inference import predict, to_batch

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
UNREACHABLE_HUB = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}


def readme_command(number: int) -> str:
    """The line after ``# {number}.`` in the README's first bash block."""
    lines = README.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"# {number}."):
            return lines[index + 1]
    raise AssertionError(f"README.md has no '# {number}.' line")


def test_ci_runs_the_readme_test_command_as_written() -> None:
    printed = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run"), "--print"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert printed == readme_command(2)
    assert printed.endswith("&& pytest -q")  # the user's form, not `python -m pytest`
    assert "python3 -m venv" in printed and '".[test]"' in printed
    assert readme_command(1).endswith("foundation quickstart")
    assert "python3 -m venv" in readme_command(1)


def test_top_level_help_imports_no_heavy_module() -> None:
    code = (
        "import sys; from foundation.cli import build_parser; build_parser(None).format_help(); "
        "build_parser('hub').format_help(); "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'lightning') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_command_summary_is_the_module_help(command) -> None:
    subparsers = argparse.ArgumentParser().add_subparsers()
    command.load().register(subparsers)
    helps = {action.dest: action.help for action in subparsers._choices_actions}
    assert helps == {command.name: command.summary}


@pytest.mark.parametrize("reference", ["runs/top_tagin", "./nothing/here", "a/b/c"])
def test_a_path_like_typo_is_a_missing_folder_without_a_hub_call(
    reference: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in UNREACHABLE_HUB.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "runs" / "top_tagging").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no such checkpoint folder") as error:
        resolve_checkpoint(reference)
    if reference == "runs/top_tagin":
        assert "runs/top_tagging" in str(error.value)


def test_cli_typo_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in UNREACHABLE_HUB.items():
        monkeypatch.setenv(key, value)
    assert main(["hub", "info", "runs/top_tagin"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no such checkpoint folder" in error
    assert main(["hub", "info", "jetformer-tiny.sim30k"]) == 1
    assert "did you mean 'jetformer-tiny.sim300k'" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError):
        main(["--debug", "hub", "info", "./missing"])


def test_predict_applies_the_checkpoint_schema(tmp_path: Path) -> None:
    path = write_jetclass_root(random_records(40, seed=3), tmp_path / "jets.root")
    model = load_pretrained("jetformer-tiny.sim300k")
    scores = predict(model, path, batch_size=16)
    probabilities = scores["jetclass"]["probabilities"]
    assert probabilities.shape == (40, 10)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    with torch.no_grad():
        direct = model.eval()(to_batch(read_jets(path), model))["jetclass"]["probabilities"]
    np.testing.assert_allclose(probabilities, direct.numpy(), rtol=1e-5, atol=1e-6)
    # normalization applied: the raw ln pT of the particles is not what the model sees
    batch = to_batch(read_jets(path), model)
    assert abs(float(batch.particles[batch.mask][:, 0].mean())) < 2.0


def test_predict_refuses_missing_fields(tmp_path: Path) -> None:
    records = random_records(10, seed=1, label_names=("label_QCD", "label_Tbqq"))
    path = write_top_landscape_hdf5(records, tmp_path / "top.h5")
    model = load_pretrained("jetformer-tiny.sim300k")
    with pytest.raises(DataError, match="part_d0val"):
        predict(model, path)
    assert predict(model, path, allow_missing_fields=True)["jetclass"]["logits"].shape == (10, 10)


def readme_python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README, flags=re.S | re.M)


def test_the_readme_has_python_snippets() -> None:
    assert len(readme_python_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
@pytest.mark.slow  # each README snippet runs in its own Python process
def test_readme_python_snippet_runs(index: int, tmp_path: Path) -> None:
    """Each snippet runs as written, in a folder holding the files it names (tiny jets)."""
    top = random_records(24, seed=5, label_names=("label_QCD", "label_Tbqq"))
    (tmp_path / "data" / "top").mkdir(parents=True)
    write_jetclass_root(top, tmp_path / "data" / "top" / "top_0.root")
    write_top_landscape_hdf5(top, tmp_path / "train.h5")
    write_quark_gluon_npz(top, tmp_path / "QG_jets.npz")
    script = tmp_path / "snippet.py"
    script.write_text(readme_python_blocks()[index], encoding="utf-8")
    environment = os.environ | UNREACHABLE_HUB | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_a_misspelt_recipe_suggests_the_right_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["finetune", "recipes/top_taging.yaml"]) == 1
    assert "did you mean recipes/top_tagging.yaml?" in capsys.readouterr().err


def test_files_and_simulate_conflict_says_how_to_switch_simulation_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    argv = ["finetune", "recipes/top_tagging.yaml", "--out", str(tmp_path / "run")]
    assert main([*argv, "--set", f'data.files=["{tmp_path}/a.root"]']) == 1
    assert "--set data.simulate=null" in capsys.readouterr().err


def test_project_errors_print_one_line_and_bugs_keep_their_traceback() -> None:
    from foundation.cli import is_expected
    from foundation.export.errors import ExportError

    assert is_expected(ExportError("graph refused")) and is_expected(FileNotFoundError("x"))
    assert not is_expected(RuntimeError("a bug")) and not is_expected(TypeError("a bug"))


@pytest.mark.parametrize("command", ["export", "evaluate", "bench", "hub"])
def test_command_help_and_typos_import_no_torch(command: str, tmp_path: Path) -> None:
    """``foundation CMD --help`` and a mistyped run folder answer before torch is loaded."""
    code = (
        "import sys\n"
        "from foundation.cli import build_parser\n"
        f"build_parser({command!r}).format_help()\n"
        "from foundation.hub.resolve import check_local_reference\n"
        "try:\n"
        "    check_local_reference('runs/top_tagin')\n"
        "except ValueError as error:\n"
        "    print(type(error).__name__)\n"
        "print('torch' in sys.modules)\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert found == ["CheckpointError", "False"]
