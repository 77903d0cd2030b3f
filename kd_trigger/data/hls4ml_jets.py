"""Reader for the public hls4ml jet data set with constituents (gluon, light quark, W, Z, top jets).

Layout (one HDF5 file per 10k jets in the public release, e.g. ``jetImage_7_100p_0_10000.h5``):
- ``jetConstituentList``: float (jets, particles, features), the particles of each jet, zero rows as
  padding; ``particleFeatureNames``: (features,) byte strings naming the last axis (``j1_px``,
  ``j1_py``, ``j1_pz``, ``j1_e``, ``j1_erel``, ``j1_pt``, ``j1_ptrel``, ``j1_eta``, ...);
- ``jets``: float (jets, jet features) with the one-hot class columns ``j_g``, ``j_q``, ``j_w``, ``j_z``,
  ``j_t`` (and ``j_undef``); ``jetFeatureNames``: (jet features,) byte strings naming its columns.

Columns are found by name, never by position. The four-vectors are the particles' own (E, px, py, pz)
(``j1_e``, ``j1_px``, ``j1_py``, ``j1_pz``, GeV), sorted by pT and truncated or zero-padded to
``data.max_constituents``; the labels follow ``data.classes`` (which must name exactly the file's
classes). The file has no split: one is drawn from ``run.seed`` and ``data.split``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np
from tqdm import tqdm

from kd_trigger.data.dataset import JetDataset, assign_split
from kd_trigger.data.features import jet_kinematics
from kd_trigger.errors import DataError

if TYPE_CHECKING:
    from kd_trigger.config import Config  # annotations only: the stage reads its section, not the schema

CONSTITUENTS_KEY = "jetConstituentList"
JETS_KEY = "jets"
PARTICLE_NAMES_KEY = "particleFeatureNames"
JET_NAMES_KEY = "jetFeatureNames"
REQUIRED = (CONSTITUENTS_KEY, JETS_KEY, PARTICLE_NAMES_KEY, JET_NAMES_KEY)

CLASS_COLUMNS = {"g": "j_g", "q": "j_q", "w": "j_w", "z": "j_z", "t": "j_t"}
"""``data.classes`` name -> one-hot column of ``jets``."""

FOUR_VECTOR_FEATURES = ("j1_e", "j1_px", "j1_py", "j1_pz")
"""The particle features read, in our (E, px, py, pz) order."""

CHUNK_ROWS = 10_000
"""Jets read at a time: one public file's worth (~100 MB of float32 at 150 particles x 16 features)."""

LAYOUT = (
    "the hls4ml jet layout (datasets jetConstituentList, jets with one-hot j_g/j_q/j_w/j_z/j_t, "
    "particleFeatureNames, jetFeatureNames)"
)


def is_hls4ml_file(keys: set[str]) -> bool:
    """Whether an HDF5 file's top-level names are those of this layout (its two data sets at least; a file
    with constituents only is of no accepted layout)."""
    return CONSTITUENTS_KEY in keys and JETS_KEY in keys


def _decode(names: np.ndarray) -> list[str]:
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n) for n in names.reshape(-1)]


def _names(f: h5py.File, key: str, path: Path) -> list[str]:
    ds = f[key]
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "SOU":
        raise DataError(f"data file {path}: {key} must be a dataset of names (strings), found {ds}")
    return _decode(np.asarray(ds[...]))


def _file_classes(jet_names: list[str]) -> list[str]:
    return [name for name, column in CLASS_COLUMNS.items() if column in jet_names]


def read_hls4ml(path: Path, cfg: Config, chunk_rows: int = CHUNK_ROWS) -> JetDataset:
    """A file of the hls4ml jet layout read ``chunk_rows`` jets at a time into preallocated arrays.

    DataError (one line): a missing dataset, particle feature or label column; classes that differ from
    ``data.classes``; a jet without exactly one class; NaN/inf four-vectors; zero jets.
    """
    path = Path(path)
    return read_hls4ml_files([path], cfg, chunk_rows, source=f"{path} (hls4ml jet layout)")


def read_hls4ml_files(
    paths: list[Path], cfg: Config, chunk_rows: int = CHUNK_ROWS, source: str = ""
) -> JetDataset:
    """Several files of the hls4ml layout (the public release comes in files of 10k jets) as one data set.

    Every file is checked before any is read; the jets are stacked in the order of ``paths`` into arrays
    allocated once, and one split is drawn over all of them from ``run.seed``.
    """
    classes = tuple(cfg.data.classes)
    plans = []
    for path in paths:
        with h5py.File(path, "r") as f:
            plans.append(_inspect(f, Path(path), classes))
    total = sum(plan[0] for plan in plans)
    m = cfg.data.max_constituents
    constituents = np.zeros((total, m, 4), dtype=np.float32)
    labels = np.empty(total, dtype=np.int8)
    offset = 0
    for path, (n, feature_idx, label_idx) in zip(paths, plans, strict=True):
        with h5py.File(path, "r") as f:
            constituents_ds, jets_ds = f[CONSTITUENTS_KEY], f[JETS_KEY]
            for start in tqdm(
                range(0, n, chunk_rows),
                desc=f"reading {Path(path).name}",
                unit="chunk",
                disable=n <= chunk_rows,
            ):
                stop = min(start + chunk_rows, n)
                # h5py reads a hyperslab; the (few) feature columns are picked in memory, where order is free.
                block = np.asarray(constituents_ds[start:stop])[:, :, feature_idx]
                bad = ~np.isfinite(block)
                if np.any(bad):
                    raise DataError(
                        f"data file {path}: {int(np.count_nonzero(bad))} NaN/inf value(s) in the particles' "
                        f"{', '.join(FOUR_VECTOR_FEATURES)} (first in jet {start + int(np.argwhere(bad)[0][0])}); "
                        "clean the file"
                    )
                one_hot = np.asarray(jets_ds[start:stop], dtype=np.float64)[:, label_idx]
                labels[offset + start : offset + stop] = _labels(one_hot, start, Path(path))
                constituents[offset + start : offset + stop] = _pt_ordered(block.astype(np.float32), m)
        offset += n
    return JetDataset(
        constituents=constituents,
        n_constituents=np.count_nonzero(constituents[:, :, 0] > 0, axis=1).astype(np.int32),
        labels=labels,
        split=assign_split(labels, cfg.data.split, cfg.run.seed),
        jet_p4=jet_kinematics(constituents),
        source=source or f"{len(paths)} files of the hls4ml jet layout",
        class_names=classes,
    )


def _inspect(f: h5py.File, path: Path, classes: tuple[str, ...]) -> tuple[int, list[int], list[int]]:
    """(jets, particle-feature indices of E/px/py/pz, jet-column indices of ``classes``) of one file,
    after every check that needs no jet read: DataError (one line) at the first problem."""
    missing = [key for key in REQUIRED if f.get(key) is None]
    if missing:
        raise DataError(f"data file {path} ({LAYOUT}) lacks dataset(s) {', '.join(missing)}")
    particle_names = _names(f, PARTICLE_NAMES_KEY, path)
    jet_names = _names(f, JET_NAMES_KEY, path)
    constituents_ds, jets_ds = f[CONSTITUENTS_KEY], f[JETS_KEY]
    for key, ds, rank in ((CONSTITUENTS_KEY, constituents_ds, 3), (JETS_KEY, jets_ds, 2)):
        if not isinstance(ds, h5py.Dataset) or ds.ndim != rank or ds.dtype.kind not in "iuf":
            raise DataError(f"data file {path}: {key} must be a {rank}-d dataset of numbers, found {ds}")
    n, _, n_features = constituents_ds.shape
    if len(particle_names) != n_features or len(jet_names) != jets_ds.shape[1]:
        raise DataError(
            f"data file {path}: {PARTICLE_NAMES_KEY} names {len(particle_names)} of {n_features} particle "
            f"features, {JET_NAMES_KEY} {len(jet_names)} of {jets_ds.shape[1]} jet columns"
        )
    if jets_ds.shape[0] != n:
        raise DataError(f"data file {path}: {JETS_KEY} has {jets_ds.shape[0]} rows, {CONSTITUENTS_KEY} {n}")
    absent = [name for name in FOUR_VECTOR_FEATURES if name not in particle_names]
    if absent:
        raise DataError(
            f"data file {path}: {PARTICLE_NAMES_KEY} lacks {', '.join(absent)} (the four-vectors are read "
            f"from {', '.join(FOUR_VECTOR_FEATURES)})"
        )
    unknown = [c for c in classes if c not in CLASS_COLUMNS]
    if unknown:
        raise DataError(
            f"data file {path}: the hls4ml jet layout has the classes {', '.join(CLASS_COLUMNS)}, but "
            f"data.classes names {', '.join(unknown)}; set data.classes to {list(CLASS_COLUMNS)}"
        )
    no_column = [CLASS_COLUMNS[c] for c in classes if CLASS_COLUMNS[c] not in jet_names]
    if no_column:
        raise DataError(
            f"data file {path}: {JETS_KEY} lacks the label column(s) {', '.join(no_column)} "
            f"of data.classes ({', '.join(classes)})"
        )
    in_file = _file_classes(jet_names)
    if set(in_file) != set(classes):
        raise DataError(
            f"data file {path} holds the classes {', '.join(in_file)} but data.classes is "
            f"{', '.join(classes)}; set data.classes to the file's classes"
        )
    if n == 0:
        raise DataError(f"data file {path} holds zero jets")
    feature_idx = [particle_names.index(name) for name in FOUR_VECTOR_FEATURES]
    label_idx = [jet_names.index(CLASS_COLUMNS[c]) for c in classes]
    return n, feature_idx, label_idx


def _labels(one_hot: np.ndarray, start: int, path: Path) -> np.ndarray:
    """The class index of each row of one-hot columns; DataError for a row that is not exactly one-hot."""
    valid = (
        np.isfinite(one_hot).all(axis=1)
        & np.isin(one_hot, (0.0, 1.0)).all(axis=1)
        & (one_hot.sum(axis=1) == 1)
    )
    if not np.all(valid):
        first = int(np.flatnonzero(~valid)[0])
        raise DataError(
            f"data file {path}: {int(np.count_nonzero(~valid))} jet(s) without exactly one class among the "
            f"label columns (first jet {start + first}: {one_hot[first].tolist()}); clean the file"
        )
    return np.argmax(one_hot, axis=1).astype(np.int8)


def _pt_ordered(block: np.ndarray, max_constituents: int) -> np.ndarray:
    """(rows, max_constituents, 4) float32: each jet's particles by decreasing pT, padding last.

    The public files are not guaranteed pT-ordered; the students keep the leading particles, so the
    order must be ours. Padding (E <= 0) sorts after every real particle.
    """
    pt = np.hypot(block[:, :, 1].astype(np.float64), block[:, :, 2].astype(np.float64))
    key = np.where(block[:, :, 0] > 0, -pt, np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :max_constituents]
    picked = np.take_along_axis(block, order[:, :, None], axis=1)
    picked[~(np.take_along_axis(block[:, :, 0], order, axis=1) > 0)] = 0.0
    out = np.zeros((block.shape[0], max_constituents, 4), dtype=np.float32)
    out[:, : picked.shape[1]] = picked
    return out
