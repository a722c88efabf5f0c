"""Simulation requests: shards, seeds, resume, parallel workers and batch-system splitting."""

from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from foundation import __version__
from foundation.errors import DataError, OutputExistsError
from foundation.locking import range_locks
from foundation.simulation import truth
from foundation.simulation.card import DetectorCard
from foundation.simulation.delphes_card import DelphesPileupCard
from foundation.simulation.detector import Candidates, Detector, GenParticles
from foundation.simulation.generator import BEAM_ENERGY_CM, MAX_PYTHIA_SEED, EventBatch, Generator
from foundation.simulation.jets import EventTruth, JetTable, select_jets, substructure
from foundation.simulation.pileup_mitigation import mitigate, to_primary_frame
from foundation.simulation.processes import PROCESSES, Process
from foundation.simulation.writer import read_metadata, write_shard

EVENTS_PER_CALL = 100
"""Events generated per ``Pythia.nextBatch`` call (and clustered together)."""
MAX_EVENTS_PER_JET = 2000
"""A shard gives up (with an error) when it needs more events than this per requested jet."""
MAX_PILEUP = 1000.0
"""The largest mean number of pileup interactions accepted (HL-LHC is about 200)."""
LOCK_FILE = ".simulate.lock"
"""The lock file of a simulation folder: one byte-range lock per shard being written."""
_SHARDS_PER_PROCESS = 10_000_000


class SimulationInterrupted(KeyboardInterrupt):
    """Simulation was stopped with Ctrl-C; the message says what is kept and how to resume."""


@dataclass(frozen=True)
class ShardSpec:
    """Everything that determines one shard's content."""

    process: str
    index: int
    n_jets: int
    seed: int
    pt_range: tuple[float, float]
    card: DetectorCard
    path: Path

    @property
    def pythia_seed(self) -> int:
        """A Pythia seed unique to (request seed, process, shard index)."""
        digest = hashlib.sha256(f"{self.seed}:{self.process}:{self.index}".encode()).digest()
        return 1 + int.from_bytes(digest[:8], "little") % (MAX_PYTHIA_SEED - 1)

    def identity(self) -> dict[str, Any]:
        """The fields a finished shard must match to be reused by a rerun."""
        return {
            "process": self.process,
            "shard_index": self.index,
            "n_jets": self.n_jets,
            "seed": self.seed,
            "pythia_seed": self.pythia_seed,
            "pt_range": list(self.pt_range),
            "process_settings": PROCESSES[self.process].pythia_settings(self.pt_range, self.index),
            "card_digest": self.card.digest(),
        }


def _visible_decays(
    event: dict[str, np.ndarray], decays: list[np.ndarray]
) -> list[tuple[np.ndarray, int]]:
    """(eta, phi) of each resonance's visible decay products, and its charged-lepton count."""
    absolute_id = np.abs(event["pdg_id"])
    result = []
    for products in decays:
        shown = products[~np.isin(absolute_id[products], truth.NEUTRINOS)]
        pt = np.hypot(event["px"][shown], event["py"][shown])
        eta = np.arcsinh(event["pz"][shown] / np.maximum(pt, 1e-12))
        phi = np.arctan2(event["py"][shown], event["px"][shown])
        leptons = int(np.isin(absolute_id[products], truth.CHARGED_LEPTONS).sum())
        result.append((np.stack([eta, phi], axis=1), leptons))
    return result


def _may_make_signal_jet(process: Process, decays: list[tuple[np.ndarray, int]]) -> bool:
    """Whether some resonance could give a matched jet: the lepton count is right and its
    visible decay products are within 2R of each other (necessary to fit in one jet)."""
    for products, leptons in decays:
        if process.leptons_required is not None and leptons != process.leptons_required:
            continue
        if len(products) == 0:
            continue
        delta_eta = products[:, None, 0] - products[None, :, 0]
        delta_phi = np.remainder(products[:, None, 1] - products[None, :, 1] + np.pi, 2 * np.pi)
        if np.hypot(delta_eta, delta_phi - np.pi).max() < 2 * process.jet_radius:
            return True
    return False


def _hard_parton_info(event: dict[str, np.ndarray]) -> np.ndarray:
    """``[H, 3]`` (eta, phi, |pdg id|) of the outgoing hard partons."""
    partons = truth.hard_partons(event)
    pt = np.maximum(np.hypot(event["px"][partons], event["py"][partons]), 1e-12)
    return np.stack(
        [
            np.arcsinh(event["pz"][partons] / pt),
            np.arctan2(event["py"][partons], event["px"][partons]),
            np.abs(event["pdg_id"][partons]).astype(np.float64),
        ],
        axis=1,
    )


def _gen_particles(
    event: dict[str, np.ndarray], keep: np.ndarray, origin: np.ndarray, charges: np.ndarray
) -> GenParticles:
    count = int(keep.sum())
    return GenParticles(
        px=event["px"][keep],
        py=event["py"][keep],
        pz=event["pz"][keep],
        energy=event["energy"][keep],
        vx=event["vx"][keep],
        vy=event["vy"][keep],
        vz=event["vz"][keep],
        charge=charges,
        pdg_id=event["pdg_id"][keep],
        origin=origin[keep],
        source=np.zeros(count, dtype=np.int32),
    )


class _Pileup:
    """Minimum-bias interactions overlaid on each event (Poisson mean from the card), and the
    delphes card's optional vertex spread and mitigation (:meth:`finish`)."""

    def __init__(self, card: DetectorCard, seed: int, rng: np.random.Generator) -> None:
        self.mean = card.pileup.mean_interactions
        self.z_sigma = card.pileup.z_sigma
        self.rng = rng
        pileup = card.pileup
        self.settings = pileup if isinstance(pileup, DelphesPileupCard) else None
        self.z_max = self.settings.z_max if self.settings is not None else None
        self.primary_z = 0.0
        self.interactions = 0
        self.generator = (
            Generator(["SoftQCD:inelastic = on"], 1 + (seed * 7919) % (MAX_PYTHIA_SEED - 1))
            if self.mean > 0
            else None
        )

    def _vertex_z(self) -> float:
        """z (mm) of an interaction: Gaussian, redrawn beyond the card's ``z_max`` if any."""
        z = self.rng.normal(0.0, self.z_sigma)
        while self.z_max is not None and abs(z) > self.z_max:
            z = self.rng.normal(0.0, self.z_sigma)
        return z

    def overlay(self, particles: GenParticles) -> GenParticles:
        """``particles`` (moved to a drawn primary-vertex z when the card spreads it) and the
        particles of a Poisson number of pileup interactions, each at its own z."""
        self.interactions = 0
        if self.settings is not None and self.settings.spread_primary_vertex:
            self.primary_z = self._vertex_z()
            particles.vz = particles.vz + self.primary_z
        if self.generator is None:
            return particles
        count = int(self.rng.poisson(self.mean))
        self.interactions = count
        if count == 0:
            return particles
        batch: EventBatch = self.generator.generate(count)
        parts = [particles]
        for k in range(len(batch)):
            event = batch.event(k)
            keep = (event["status"] > 0) & ~np.isin(np.abs(event["pdg_id"]), truth.NEUTRINOS)
            z_offset = self._vertex_z()
            origin = np.full(len(keep), truth.PILEUP, dtype=np.int8)
            added = _gen_particles(
                event, keep, origin, self.generator.charges(event["pdg_id"][keep])
            )
            added.vz = added.vz + z_offset
            added.source = np.full(int(keep.sum()), k + 1, dtype=np.int32)
            parts.append(added)
        return GenParticles(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in GenParticles.__dataclass_fields__
            }
        )

    def finish(self, candidates: Candidates) -> Candidates:
        """The last overlaid event's candidates in the primary vertex's frame, with the card's
        charged-hadron subtraction and PUPPI applied (unchanged when the card has none)."""
        if self.settings is None or not self.settings.changes_reconstruction:
            return candidates
        candidates = to_primary_frame(candidates, self.primary_z)
        return mitigate(candidates, self.settings, self.interactions)


def _reconstruct_event(
    event: dict[str, np.ndarray],
    event_id: int,
    process: Process,
    generator: Generator,
    detector: Detector,
    pileup: _Pileup,
) -> tuple[Candidates, EventTruth] | None:
    """Truth and detector candidates of one event (None when it cannot give a selected jet)."""
    decays = truth.resonance_decays(event, process.resonance) if process.resonance else []
    visible_decays = _visible_decays(event, decays)
    if process.resonance and not _may_make_signal_jet(process, visible_decays):
        return None
    products = np.concatenate(decays) if decays else np.zeros(0, dtype=np.int64)
    origin = truth.particle_origins(event, products)
    absolute_id = np.abs(event["pdg_id"])
    visible = (event["status"] > 0) & ~np.isin(absolute_id, truth.NEUTRINOS)
    momenta = np.stack([event["px"], event["py"], event["pz"], event["energy"]], axis=1)
    event_truth = EventTruth(momenta[visible], visible_decays, _hard_parton_info(event), event_id)
    pt = np.hypot(event["px"], event["py"])
    eta = np.arcsinh(event["pz"] / np.maximum(pt, 1e-12))
    detectable = visible & (np.abs(eta) < detector.acceptance)
    charges = generator.charges(event["pdg_id"][detectable])
    particles = pileup.overlay(_gen_particles(event, detectable, origin, charges))
    return pileup.finish(detector.reconstruct(particles)), event_truth


def simulate_shard(spec: ShardSpec, progress: Callable[[int], None] | None = None) -> dict:
    """Generate, reconstruct and write one shard of exactly ``spec.n_jets`` jets.

    Returns:
        The metadata written into the shard (seeds, counts, timing, card).
    """
    process = PROCESSES[spec.process]
    start = time.perf_counter()
    generator = Generator(process.pythia_settings(spec.pt_range, spec.index), spec.pythia_seed)
    rng = np.random.default_rng(spec.pythia_seed)
    detector = Detector(spec.card, rng)
    pileup = _Pileup(spec.card, spec.pythia_seed, rng)
    table = JetTable()
    n_events = 0
    pythia_seconds = 0.0
    while len(table) < spec.n_jets:
        if n_events > MAX_EVENTS_PER_JET * spec.n_jets:
            raise ValueError(
                f"{spec.path}: {n_events} events gave only {len(table)} of {spec.n_jets} jets "
                f"for process {spec.process} in pT range {spec.pt_range}: check the selection"
            )
        tick = time.perf_counter()
        batch = generator.generate(EVENTS_PER_CALL)
        pythia_seconds += time.perf_counter() - tick
        events = []
        for position in range(len(batch)):
            reconstructed = _reconstruct_event(
                batch.event(position),
                (spec.pythia_seed << 24) | (n_events + position),
                process,
                generator,
                detector,
                pileup,
            )
            if reconstructed is not None:
                events.append(reconstructed)
        n_events += len(batch)
        before = len(table)
        select_jets(process, spec.pt_range, events, table, max_jets=spec.n_jets)
        if progress is not None:
            progress(len(table) - before)
    jets = {name: np.asarray(values) for name, values in table.jets.items()}
    jets.update(substructure(table, process.jet_radius))
    metadata = {
        **spec.identity(),
        "library_version": __version__,
        "process_description": process.description,
        "jet_radius": process.jet_radius,
        "card": spec.card.to_dict(),
        "n_events": n_events,
        "wall_seconds": round(time.perf_counter() - start, 3),
        "pythia_seconds": round(pythia_seconds, 3),
    }
    write_shard(spec.path, jets, table.particles, metadata)
    return metadata


def plan_shards(
    processes: list[Process],
    n_jets: int,
    out: Path,
    seed: int,
    card: DetectorCard,
    shard_size: int,
    pt_range: tuple[float, float] | None = None,
) -> list[ShardSpec]:
    """Split a request into shards: ``n_jets`` per process, at most ``shard_size`` per shard.

    Shards are ordered by index first and process second, so a request stopped half-way (or
    the first jobs of a batch submission) leaves every process with the same number of shards.
    """
    if n_jets <= 0:
        raise ValueError(f"--jets: expected a positive number of jets, found {n_jets}")
    check_pt_range(pt_range)
    mean = card.pileup.mean_interactions
    if not (math.isfinite(mean) and 0 <= mean <= MAX_PILEUP):
        raise ValueError(
            f"card {card.name!r}: pileup.mean_interactions: expected 0..{MAX_PILEUP:g}, "
            f"found {mean}"
        )
    if shard_size <= 0:
        raise ValueError(f"--shard-size: expected a positive number, found {shard_size}")
    specs = []
    n_shards = math.ceil(n_jets / shard_size)
    for index in range(n_shards):
        for process in processes:
            size = min(shard_size, n_jets - index * shard_size)
            specs.append(
                ShardSpec(
                    process=process.name,
                    index=index,
                    n_jets=size,
                    seed=seed,
                    pt_range=tuple(pt_range or process.pt_range),
                    card=card,
                    path=out / f"{process.name}_{index:05d}.root",
                )
            )
    return specs


def check_pt_range(pt_range: tuple[float, float] | None) -> None:
    """A jet pT window must be finite, ``0 < low < high``, and ``high`` within the beams'
    reach (half the centre-of-mass energy).

    Raises:
        ValueError: the window is not possible (the message names it and the beam energy).
    """
    if pt_range is None:
        return
    try:
        low, high = (float(value) for value in pt_range)
    except (TypeError, ValueError):
        raise ValueError(f"--pt-range: expected LOW,HIGH in GeV, found {pt_range!r}") from None
    limit = BEAM_ENERGY_CM / 2
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low < high <= limit):
        raise ValueError(
            f"--pt-range: expected 0 < LOW < HIGH <= {limit:g} GeV (half the {BEAM_ENERGY_CM:g} "
            f"GeV centre-of-mass energy), found {low:g},{high:g}"
        )


def _lock_offset(spec: ShardSpec) -> int:
    """The byte of :data:`LOCK_FILE` that locks ``spec``'s shard."""
    return list(PROCESSES).index(spec.process) * _SHARDS_PER_PROCESS + spec.index


def _ignore_interrupts() -> None:
    """Pool workers leave Ctrl-C to the main process, which ends them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _is_done(spec: ShardSpec, overwrite: bool) -> bool:
    """Whether a finished shard matching ``spec`` exists (resume), refusing a different one."""
    if not spec.path.exists():
        return False
    if overwrite:
        return False
    try:
        metadata = read_metadata(spec.path)
    except DataError:
        raise OutputExistsError(spec.path, "an unreadable shard") from None
    stored = {key: metadata.get(key) for key in spec.identity()}
    if stored != spec.identity():
        different = {
            key: (stored[key], value)
            for key, value in spec.identity().items()
            if stored[key] != value
        }
        raise OutputExistsError(
            spec.path, f"a shard of another request (stored vs asked: {different})"
        )
    return True


def _run_one(spec: ShardSpec) -> dict:
    return simulate_shard(spec)


def run_shards(
    specs: list[ShardSpec],
    workers: int = 1,
    overwrite: bool = False,
    show_progress: bool = True,
) -> list[dict]:
    """Simulate every shard not already finished; returns the metadata of those it made.

    The shards to make are locked first (one byte-range lock each in ``OUT/.simulate.lock``):
    another process making any of them is refused at once, while batch jobs making different
    shards of one folder (``--shard I/N``) run side by side.

    Raises:
        OutputLockedError: another running process is making one of these shards.
        SimulationInterrupted: Ctrl-C; finished shards are kept, workers are ended.
        OutputExistsError: a shard of another request is in the way (without ``overwrite``).
    """
    todo = [spec for spec in specs if not _is_done(spec, overwrite)]
    for spec in specs:
        spec.path.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    folders = sorted({spec.path.parent for spec in todo})
    with contextlib.ExitStack() as locks:
        for folder in folders:
            offsets = [_lock_offset(spec) for spec in todo if spec.path.parent == folder]
            locks.enter_context(range_locks(folder / LOCK_FILE, offsets, "a shard of this request"))
        try:
            _simulate(specs, todo, workers, show_progress, results)
        except KeyboardInterrupt:
            done = len(specs) - len(todo) + len(results)
            raise SimulationInterrupted(
                f"interrupted: {done} of {len(specs)} shards are finished and kept; rerun the "
                "same command to make the others"
            ) from None
    return results


def _simulate(
    specs: list[ShardSpec],
    todo: list[ShardSpec],
    workers: int,
    show_progress: bool,
    results: list[dict],
) -> None:
    """Simulate ``todo`` (serially or in a pool), appending each shard's metadata to
    ``results`` as it finishes; a Ctrl-C ends the pool's workers before it propagates."""
    total = sum(spec.n_jets for spec in todo)
    skipped = len(specs) - len(todo)
    with tqdm(
        total=total,
        unit="jet",
        disable=not show_progress,
        desc=f"simulate ({skipped} shards done before)" if skipped else "simulate",
    ) as bar:
        if workers <= 1:
            for spec in todo:
                results.append(simulate_shard(spec, progress=bar.update))
            return
        context = multiprocessing.get_context("spawn")
        # workers start with Ctrl-C ignored (inherited), so that an early Ctrl-C cannot stop
        # one half-way through its imports; the main process ends them
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            pool = context.Pool(workers, initializer=_ignore_interrupts)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
        try:
            for metadata in pool.imap_unordered(_run_one, todo):
                bar.update(metadata["n_jets"])
                results.append(metadata)
            pool.close()
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()


def select_batch_shards(specs: list[ShardSpec], job: int, n_jobs: int) -> list[ShardSpec]:
    """The shards of batch job ``job`` out of ``n_jobs`` (``--shard I/N``): every N-th shard."""
    if n_jobs <= 0 or not 0 <= job < n_jobs:
        raise ValueError(f"--shard: expected I/N with 0 <= I < N, found {job}/{n_jobs}")
    return specs[job::n_jobs]


def shard_summary(metadata: list[dict]) -> dict[str, float]:
    """Jets, events and timing totals of finished shards (for the command's report)."""
    jets = sum(m["n_jets"] for m in metadata)
    events = sum(m["n_events"] for m in metadata)
    wall = sum(m["wall_seconds"] for m in metadata)
    pythia = sum(m["pythia_seconds"] for m in metadata)
    return {
        "jets": jets,
        "events": events,
        "wall_seconds": wall,
        "jets_per_second_per_worker": jets / wall if wall else 0.0,
        "pythia_events_per_second": events / pythia if pythia else 0.0,
        "pythia_fraction_of_time": pythia / wall if wall else 0.0,
    }
