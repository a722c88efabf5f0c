""":class:`JetRecords`: what every reader returns — plain numpy arrays in a flat ragged layout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from foundation.data.kinematics import jet_index
from foundation.data.schema import TRUTH_PARTICLE_BRANCHES
from foundation.errors import DataError

VECTOR_FIELDS: tuple[str, ...] = ("part_px", "part_py", "part_pz", "part_energy")
"""Particle fields every record holds: the 4-vector in GeV."""


@dataclass(frozen=True)
class JetRecords:
    """Jets read from one or more files, as numpy arrays with particles stored flat.

    Particle arrays hold the particles of jet 0, then those of jet 1, ...; ``counts[i]`` says how
    many belong to jet ``i`` (0 is allowed). Keys use the JetClass branch names of
    :mod:`foundation.data.schema`; an optional field that a file lacks is simply absent from the
    mapping (features computed from it are then 0: see :attr:`particle_fields`).

    Attributes:
        counts: particles per jet.
        particles: JetClass particle branch name -> flat array. Always holds ``part_px``,
            ``part_py``, ``part_pz``, ``part_energy`` (float32, GeV); may hold ``part_deta``,
            ``part_dphi``, ``part_d0val``, ``part_d0err``, ``part_dzval``, ``part_dzerr``,
            ``part_charge`` and the five ``part_is*`` identity flags (float32).
        jets: jet branch name -> per-jet array (``jet_pt``, ``jet_eta``, ``jet_phi``,
            ``jet_energy``, ``jet_nparticles``, ``jet_sdmass``, ``jet_tau1..4`` when present).
        labels: class index of each jet into ``label_names``.
        label_names: label branch names, e.g. :data:`~foundation.data.schema.TOP_LABELS`.
        event_id: event of each jet (the jet index within its file when the file has none).
        truth: ``jet_truth_*`` per-jet arrays and ``part_origin`` / ``part_vertex`` flat
            per-particle int32 arrays, when the file has them.
        sources: the files the jets were read from.

    Shapes:
        - counts, labels, event_id, jets[...], truth["jet_truth_*"]: ``[n_jets]``
        - particles[...], truth["part_origin"], truth["part_vertex"]: ``[sum(counts)]``
    """

    counts: np.ndarray
    particles: Mapping[str, np.ndarray]
    jets: Mapping[str, np.ndarray]
    labels: np.ndarray
    label_names: tuple[str, ...]
    event_id: np.ndarray
    truth: Mapping[str, np.ndarray] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        source = ", ".join(self.sources) or "JetRecords"
        counts = np.asarray(self.counts)
        if counts.ndim != 1 or not np.issubdtype(counts.dtype, np.integer):
            raise DataError(
                source, "counts", "a 1-D integer array", f"shape {counts.shape} {counts.dtype}"
            )
        if counts.size and counts.min() < 0:
            raise DataError(source, "counts", "non-negative particle counts", int(counts.min()))
        n_jets, n_particles = len(counts), int(counts.sum())
        missing = [name for name in VECTOR_FIELDS if name not in self.particles]
        if missing:
            raise DataError(source, missing[0], "the particle 4-vector fields", "no such field")
        for name, values in self.particles.items():
            _check_length(source, name, values, n_particles, "sum(counts)")
        for name, values in self.jets.items():
            _check_length(source, name, values, n_jets, "one value per jet")
        for name, values in self.truth.items():
            expected = n_particles if name in TRUTH_PARTICLE_BRANCHES else n_jets
            _check_length(source, name, values, expected, "one value per jet or particle")
        _check_length(source, "labels", self.labels, n_jets, "one label per jet")
        _check_length(source, "event_id", self.event_id, n_jets, "one event id per jet")
        if self.labels.size and self.label_names:
            low, high = int(self.labels.min()), int(self.labels.max())
            if low < 0 or high >= len(self.label_names):
                raise DataError(
                    source,
                    "labels",
                    f"class indices in [0, {len(self.label_names)})",
                    f"values in [{low}, {high}]",
                )

    def __len__(self) -> int:
        return len(self.counts)

    @property
    def n_jets(self) -> int:
        """Number of jets."""
        return len(self.counts)

    @property
    def n_particles(self) -> int:
        """Total number of particles over all jets."""
        return int(np.sum(self.counts))

    @property
    def offsets(self) -> np.ndarray:
        """Start of each jet's particles in the flat arrays, plus the total at the end.

        Shapes:
            - output: ``[n_jets + 1]`` int64.
        """
        return np.concatenate([[0], np.cumsum(self.counts, dtype=np.int64)])

    @property
    def particle_fields(self) -> tuple[str, ...]:
        """Names of the particle fields present (the 4-vector fields always are)."""
        return tuple(self.particles)

    def jet_index(self) -> np.ndarray:
        """Jet index of every particle.

        Shapes:
            - output: ``[n_particles]`` int64.
        """
        return jet_index(self.counts)

    def select(self, index: slice | Sequence[int] | np.ndarray) -> JetRecords:
        """The jets at ``index`` (a slice, integer indices or a boolean mask), in that order."""
        if isinstance(index, slice):
            start, stop, step = index.indices(self.n_jets)
            if step == 1:
                return self._contiguous(start, max(start, stop))
            index = np.arange(start, stop, step)
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64, copy=False)
        counts = self.counts[index]
        starts = self.offsets[:-1][index]
        new_offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        flat = np.arange(int(new_offsets[-1]), dtype=np.int64) + np.repeat(
            starts - new_offsets[:-1], counts
        )
        return self._take(index, counts, flat)

    def __getitem__(self, index: slice | Sequence[int] | np.ndarray) -> JetRecords:
        return self.select(index)

    def _contiguous(self, start: int, stop: int) -> JetRecords:
        offsets = self.offsets
        return self._take(
            slice(start, stop), self.counts[start:stop], slice(offsets[start], offsets[stop])
        )

    def _take(
        self, jets: slice | np.ndarray, counts: np.ndarray, flat: slice | np.ndarray
    ) -> JetRecords:
        return JetRecords(
            counts=counts,
            particles={name: values[flat] for name, values in self.particles.items()},
            jets={name: values[jets] for name, values in self.jets.items()},
            labels=self.labels[jets],
            label_names=self.label_names,
            event_id=self.event_id[jets],
            truth={
                name: values[flat if name in TRUTH_PARTICLE_BRANCHES else jets]
                for name, values in self.truth.items()
            },
            sources=self.sources,
        )

    @staticmethod
    def concat(parts: Sequence[JetRecords]) -> JetRecords:
        """Concatenate records jet-wise.

        Fields present in only some of the parts are dropped (the result keeps what all share);
        every part must have the same ``label_names``.

        Raises:
            DataError: the parts disagree on their label names, or no part is given.
        """
        if not parts:
            raise DataError("JetRecords.concat", "parts", "at least one JetRecords", "none")
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        for part in parts[1:]:
            if part.label_names != first.label_names:
                raise DataError(
                    ", ".join(part.sources) or "JetRecords",
                    "label_names",
                    f"the label names of {', '.join(first.sources) or 'the first part'}: "
                    f"{first.label_names}",
                    part.label_names,
                    hint="read files with the same label branches together",
                )

        def shared(mappings: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
            names = [name for name in mappings[0] if all(name in m for m in mappings)]
            return {name: np.concatenate([m[name] for m in mappings]) for name in names}

        return JetRecords(
            counts=np.concatenate([p.counts for p in parts]),
            particles=shared([p.particles for p in parts]),
            jets=shared([p.jets for p in parts]),
            labels=np.concatenate([p.labels for p in parts]),
            label_names=first.label_names,
            event_id=np.concatenate([p.event_id for p in parts]),
            truth=shared([p.truth for p in parts]),
            sources=tuple(s for p in parts for s in p.sources),
        )


def _check_length(source: str, name: str, values: np.ndarray, expected: int, what: str) -> None:
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != expected:
        raise DataError(
            source, name, f"a 1-D array of length {expected} ({what})", f"shape {values.shape}"
        )
