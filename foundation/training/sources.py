"""From a recipe's ``data`` section to a cache folder: simulate if asked, read, cache once.

The cache (see :mod:`foundation.data.cache`) is written once and reused by every later run with
the same sources, features and particle count. Its default name carries a digest of the data
request (file patterns or simulation request, features, particle slots), so that every process
of a multi-GPU run computes the same folder: global rank 0 simulates and writes it, the other
ranks wait for it. A cache whose source files changed since it was written is an error, never
silently reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from foundation.data.cache import CACHE_INFO, CacheInfo, read_cache_info, write_cache
from foundation.data.features import resolve_feature_names
from foundation.data.readers import expand_paths, iter_jets
from foundation.errors import DataError
from foundation.training.recipe import DataConfig, SimulateConfig

WAIT_SECONDS = 6 * 3600
"""How long ranks other than 0 wait for rank 0 to write the cache."""


def simulation_folder(config: SimulateConfig) -> Path:
    """The folder of the simulated shards (``simulate.folder`` or a name made of the request).

    The name carries every part of the request that changes the jets: processes, jets per
    process, seed, pT window and, for any card but ``default`` (whose folders predate cards), the
    card's name or YAML stem, e.g. ``data/sim/toptagging-8000-s2-pt550-650-jetclass``.
    """
    if config.folder:
        return Path(config.folder)
    name = f"{config.process.replace(',', '+')}-{config.jets}-s{config.seed}"
    if config.pt_range is not None:
        name += f"-pt{config.pt_range[0]:g}-{config.pt_range[1]:g}"
    if config.card != "default":
        name += f"-{Path(config.card).stem}"
    return Path("data/sim") / name


def simulate(config: SimulateConfig, show_progress: bool = True) -> list[Path]:
    """Simulate the shards of ``config`` that are not finished yet; return every shard path.

    Raises:
        OutputExistsError: a shard of a different request occupies the folder.
    """
    from foundation.simulation.card import load_card
    from foundation.simulation.processes import resolve_processes
    from foundation.simulation.runner import plan_shards, run_shards

    specs = plan_shards(
        resolve_processes(config.process),
        config.jets,
        simulation_folder(config),
        config.seed,
        load_card(config.card),
        config.shard_size,
        config.pt_range,
    )
    pending = [spec for spec in specs if not spec.path.exists()]
    if pending and show_progress:
        print(simulation_announcement(config, sum(spec.n_jets for spec in pending)), flush=True)
    run_shards(specs, workers=config.workers, show_progress=show_progress)
    return [spec.path for spec in specs]


ESTIMATED_JETS_PER_SECOND_PER_CORE = 14.0
"""A rough simulation rate for announcements: the quickstart made 5,000 top and QCD jets in
3 min 2 s with 2 workers on 2 cores (README); other processes and cards differ."""


def simulation_announcement(config: SimulateConfig, jets: int) -> str:
    """What an implicit simulation is about to make, where, and roughly how long it takes."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parallel = max(1, min(config.workers, cores or 1))
    minutes = jets / (ESTIMATED_JETS_PER_SECOND_PER_CORE * parallel) / 60.0
    return (
        f"data.simulate: making {jets} jets ({config.process}, card {config.card}, seed "
        f"{config.seed}) into {simulation_folder(config)} with {config.workers} worker"
        f"{'s' if config.workers > 1 else ''} on {cores} cores: roughly {max(minutes, 1):.0f} "
        "min. Finished shards are kept: Ctrl-C and rerun to continue; "
        "--set data.simulate.jets=N makes fewer."
    )


def cache_folder(config: DataConfig) -> Path:
    """The cache folder of ``config``: ``data.cache``, or ``<cache_root>/<stem>-<digest>``."""
    if config.cache:
        return Path(config.cache)
    if config.simulate is not None:
        request = {"simulate": _simulate_request(config.simulate)}
        stem = simulation_folder(config.simulate).name
    else:
        request = {"files": [str(Path(pattern).resolve()) for pattern in config.files]}
        stem = Path(config.files[0]).stem.replace("*", "") or "jets"
    request |= {
        "format": config.format,
        "features": list(resolve_feature_names(config.features)),
        "max_particles": config.max_particles,
    }
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:12]
    return Path(config.cache_root) / f"{stem}-{digest}"


def _simulate_request(config: SimulateConfig) -> dict:
    return {
        "process": config.process,
        "jets": config.jets,
        "seed": config.seed,
        "pt_range": list(config.pt_range) if config.pt_range else None,
        "card": config.card,
        "shard_size": config.shard_size,
        "folder": str(simulation_folder(config).resolve()),
    }


def global_rank() -> int:
    """This process's global rank from the launcher's environment (0 when not distributed)."""
    for name in ("RANK", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def _check_features(info: CacheInfo, config: DataConfig) -> CacheInfo:
    names = resolve_feature_names(config.features)
    missing = [name for name in names if name not in info.feature_names]
    if missing or info.max_particles != config.max_particles:
        raise DataError(
            info.folder,
            CACHE_INFO,
            f"a cache with features {list(names)} and max_particles={config.max_particles}",
            f"features {list(info.feature_names)} and max_particles={info.max_particles}",
            hint="point data.cache to another folder, or delete this cache to rebuild it",
        )
    return info


def _check_sources(info: CacheInfo, files: list[Path]) -> None:
    """The cache was written from exactly these files, unchanged since."""
    recorded = {entry.get("path"): entry for entry in info.sources}
    for path in files:
        entry = recorded.get(str(path.resolve()))
        stat = path.stat()
        if (
            entry is None
            or entry.get("size") != stat.st_size
            or entry.get("mtime") != stat.st_mtime
        ):
            raise DataError(
                info.folder,
                "sources",
                f"a cache written from the current {path}",
                "a cache of other or older files",
                hint="delete the cache folder to rebuild it, or set data.cache to a new folder",
            )


def prepare_cache(config: DataConfig, show_progress: bool = True) -> CacheInfo:
    """Make sure the jets of ``config`` are in a cache folder, and return its info.

    Rank 0 simulates (``data.simulate``; finished shards are kept), reads ``data.files`` and
    writes the cache when it does not exist yet; other ranks wait for it.

    Raises:
        DataError: unreadable or inconsistent inputs, a cache of other features, or a cache
            whose sources changed.
        FileNotFoundError: ``data.cache`` holds no cache and nothing is given to build it.
    """
    folder = cache_folder(config)
    exists = (folder / CACHE_INFO).is_file()
    if not config.files and config.simulate is None:
        if not exists:
            raise FileNotFoundError(
                f"data.cache {folder}: no cache there (and no data.files or data.simulate to "
                "build it)"
            )
        return _check_features(read_cache_info(folder), config)
    if global_rank() != 0:
        _wait_for(folder / CACHE_INFO, WAIT_SECONDS)
        return _check_features(read_cache_info(folder), config)
    if config.simulate is not None:
        files = simulate(config.simulate, show_progress=show_progress)
    else:
        files = expand_paths(config.files)
    if exists:
        info = read_cache_info(folder)
        _check_sources(info, files)
        return _check_features(info, config)
    write_cache(
        iter_jets(files, config.format),
        folder,
        features=resolve_feature_names(config.features),
        max_particles=config.max_particles,
    )
    return _check_features(read_cache_info(folder), config)


def _wait_for(path: Path, timeout: float) -> None:
    start = time.monotonic()
    while not path.exists():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"waited {timeout:.0f} s for rank 0 to write {path}")
        time.sleep(2.0)
