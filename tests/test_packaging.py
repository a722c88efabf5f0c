"""Packaging: extras, a core install without them, ``python -m foundation``, and a wheel that
carries every shipped checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from foundation.extras import EXTRAS, MissingExtraError, requires_extra
from foundation.hub import CHECKPOINTS_ENV

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
OPTIONAL = {
    "pythia8mc", "fastjet", "lightning", "tensorboard", "scikit-learn", "matplotlib",
    "torch-geometric",
}  # fmt: skip

# Modules of the extras, blocked in a subprocess as if they were not installed.
BLOCKER = textwrap.dedent(
    """
    import sys

    BLOCKED = {"pythia8mc", "fastjet", "lightning", "pytorch_lightning", "tensorboard",
               "sklearn", "matplotlib", "torch_geometric"}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    """
)


def _name(requirement: str) -> str:
    """``"torch>=2.5"`` -> ``"torch"``."""
    for separator in "<>=!~[; ":
        requirement = requirement.split(separator, 1)[0]
    return requirement.strip().lower()


def _environment() -> dict[str, str]:
    """This process's environment without the variables that redirect imports or lookups."""
    drop = {"PYTHONPATH", CHECKPOINTS_ENV}
    return {key: value for key, value in os.environ.items() if key not in drop}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=300
    )


def _run_python(code: str, cwd: Path, python: str = sys.executable) -> subprocess.CompletedProcess:
    return _run([python, "-c", code], cwd)


def test_core_dependencies_leave_simulation_and_training_to_extras():
    project = PYPROJECT["project"]
    core = {_name(r) for r in project["dependencies"]}
    assert not core & OPTIONAL, f"optional packages among the core dependencies: {core & OPTIONAL}"
    assert {"torch", "safetensors", "huggingface-hub", "onnx", "onnxruntime"} <= core
    extras = project["optional-dependencies"]
    for extra, (_, packages) in EXTRAS.items():
        declared = {_name(r) for r in extras[extra]}
        named = {p.strip() for p in packages.split(",")}
        assert named <= declared, f"[{extra}]: the error message names {named - declared}"
    assert "foundation-jets[sim,train,pyg]" in extras["all"]
    assert "foundation-jets[all]" in extras["test"]
    exact = [r for group in extras.values() for r in group if "==" in r]
    assert exact == [], f"exact pins: {exact}"


def test_requires_extra_names_the_extra():
    message = r"'no_such_module_x'.*\[sim\].*pip install 'foundation-jets\[sim\]'"
    with pytest.raises(MissingExtraError, match=message), requires_extra("sim"):
        import no_such_module_x  # noqa: F401
    with pytest.raises(KeyError, match="unknown extra"), requires_extra("nope"):
        pass
    # a missing module of this library is a bug, not an extra
    with pytest.raises(ModuleNotFoundError) as caught, requires_extra("train"):
        import foundation.no_such_module  # noqa: F401
    assert not isinstance(caught.value, MissingExtraError)


@pytest.mark.slow  # a fresh Python process importing torch
def test_core_install_without_extras(tmp_path: Path):
    """Loading, inference, export and the CLI import without Pythia, FastJet or Lightning;
    simulation and training say which extra to install."""
    code = BLOCKER + textwrap.dedent(
        """
        import torch
        import foundation.export, foundation.data
        from foundation.cli import build_parser
        from foundation import load_pretrained
        from foundation.hub import list_pretrained
        from foundation.data.batch import JetBatch

        build_parser()
        name = list_pretrained()[0]
        model = load_pretrained(name)
        features = len(model.feature_schema.particle_features)
        batch = JetBatch(particles=torch.zeros(2, 3, features), mask=torch.ones(2, 3, dtype=bool),
                         vectors=torch.ones(2, 3, 4), jet=torch.zeros(2, 0))
        with torch.no_grad():
            model(batch)
        for module, extra in (("foundation.simulation.jets", "[sim]"),
                              ("foundation.simulation.generator", None),
                              ("foundation.training.run", "[train]"),
                              ("foundation.evaluation", "[train]"),
                              ("foundation.data.graph", "[pyg]")):
            try:
                __import__(module)
            except ImportError as error:
                assert extra and extra in str(error) and "pip install" in str(error), error
                print(module, "->", type(error).__name__)
            else:
                assert extra is None, module + " imported without its extra"
        """
    )
    result = _run_python(code, ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "foundation.simulation.jets -> MissingExtraError" in result.stdout
    assert "foundation.training.run -> MissingExtraError" in result.stdout


def test_python_dash_m_foundation():
    result = _run([sys.executable, "-m", "foundation", "--version"], ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("foundation ")


def _shipped() -> dict[str, bool]:
    """``{name: has weights}`` of every folder of the repository's checkpoints/."""
    return {
        folder.name: (folder / "model.safetensors").is_file()
        for folder in sorted((ROOT / "checkpoints").iterdir())
        if (folder / "config.json").is_file()
    }


def _copy_sources(target: Path) -> Path:
    """The files a wheel is built from, without build leftovers of the working tree."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", ".*")
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, target / name)
    for name in ("foundation", "heads", "checkpoints"):
        shutil.copytree(ROOT / name, target / name, ignore=ignore)
    return target


@pytest.mark.slow
def test_wheel_carries_every_shipped_checkpoint(tmp_path: Path):
    """Build the wheel, install it (no dependencies, reusing this environment's packages) into a
    fresh virtual environment, and load every shipped checkpoint by name from there."""
    shipped = _shipped()
    assert shipped, "no shipped checkpoint folder"
    source = tmp_path / "src"
    source.mkdir()
    _copy_sources(source)
    dist = tmp_path / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run([*build, "-q", "-w", str(dist), str(source)], check=True, timeout=300)
    (wheel,) = dist.glob("foundation_jets-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    target = _run_python(
        "import sysconfig; print(sysconfig.get_paths()['purelib'])", tmp_path, python
    )
    site = Path(target.stdout.strip())
    # this environment's packages (torch, safetensors...) after the venv's own; .pth files of
    # that folder (an editable install of this repository) are not processed from a path entry
    (site / "_reuse.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    install = [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q"]
    subprocess.run([*install, str(wheel)], check=True, timeout=300)

    code = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        import foundation, foundation_checkpoints
        from foundation import load_pretrained
        from foundation.hub import list_pretrained

        assert Path(foundation.__file__).is_relative_to({str(site)!r}), foundation.__file__
        assert (Path(foundation.__file__).parent / "py.typed").is_file()
        names = {sorted(shipped)!r}
        with_weights = {sorted(n for n, w in shipped.items() if w)!r}
        assert list_pretrained() == names, (list_pretrained(), names)
        loaded = {{}}
        for name in with_weights:
            model = load_pretrained(name)
            assert Path(model.source["folder"]).is_relative_to({str(site)!r}), model.source
            loaded[name] = model.source["sha256"]
        print(json.dumps(loaded))
        """
    )
    env_free = _run_python(code, tmp_path, python)
    assert env_free.returncode == 0, env_free.stderr[-3000:]
    loaded = json.loads(env_free.stdout.strip().splitlines()[-1])
    assert sorted(loaded) == sorted(n for n, w in shipped.items() if w)
    cli = _run([python, "-m", "foundation", "hub", "list"], tmp_path)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert all(name in cli.stdout for name in shipped)
