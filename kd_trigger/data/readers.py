"""Readers: our own jet file and the public Top Quark Tagging layout into one :class:`JetDataset`.

Accepted layouts (and :mod:`kd_trigger.data.hls4ml_jets` for the hls4ml jet data set):
- ours (``kd-trigger data``): HDF5 datasets ``constituents``, ``n_constituents``, ``is_signal`` (two
  classes) or ``label`` (any number), ``split`` (+ ``jet_p4``, ``truth_top_p4``), attribute
  ``format = "kd_trigger.jets"`` and ``classes`` (JSON list of class names; absent: qcd, top);
- Top Quark Tagging reference (arXiv:1902.09914): a pandas HDF5 file written by ``DataFrame.to_hdf``
  under key ``table`` with columns ``E_i, PX_i, PY_i, PZ_i`` (i = 0..199), ``truthE/PX/PY/PZ``, ``ttv``
  and ``is_signal_new``. It has no split: one is drawn from ``run.seed`` and ``data.split``.

Every problem is one :class:`DataError` line naming the file and what is wrong; nothing is written.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from tqdm import tqdm

from kd_trigger.config.data import DEFAULT_CLASSES
from kd_trigger.data.dataset import FORMAT_NAME, SPLIT_CODES, JetDataset, assign_split
from kd_trigger.data.features import jet_kinematics
from kd_trigger.data.hls4ml_jets import LAYOUT as HLS4ML_LAYOUT
from kd_trigger.data.hls4ml_jets import is_hls4ml_file, read_hls4ml, read_hls4ml_files
from kd_trigger.errors import DataError
from kd_trigger.runs import file_problem

if TYPE_CHECKING:
    from kd_trigger.config import Config  # annotations only: the stage reads its section, not the schema

log = logging.getLogger(__name__)

OWN_REQUIRED = ("constituents", "n_constituents", "is_signal", "split")
"""Required datasets of a two-class file; an N-class file has ``label`` in place of ``is_signal``."""
OWN_OPTIONAL = ("jet_p4", "truth_top_p4")
PUBLIC_KEY = "table"
PUBLIC_N_CONSTITUENTS = 200
PUBLIC_COMPONENTS = ("E", "PX", "PY", "PZ")
PUBLIC_TRUTH = ("truthE", "truthPX", "truthPY", "truthPZ")
PUBLIC_LABEL = "is_signal_new"
LAYOUTS = (
    "kd_trigger's own file (datasets constituents, n_constituents, is_signal, split; from `kd-trigger data`)",
    "the Top Quark Tagging pandas HDF5 layout (key 'table', columns E_i/PX_i/PY_i/PZ_i, is_signal_new)",
    HLS4ML_LAYOUT,
)


def _missing_hint() -> str:
    return "make it with `make data CONFIG=...` (or `kd-trigger data --config ...`), or set data.path to an existing file"


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _is_component_column(name: str) -> bool:
    prefix, _, index = name.rpartition("_")
    return prefix in PUBLIC_COMPONENTS and index.isdigit()


def load_jets(path: Path, cfg: Config) -> JetDataset:
    """Read a jet file in either accepted layout, with ``cfg.data.max_constituents`` constituents per jet.

    Longer jets are truncated and shorter ones zero-padded. Raises :class:`DataError` (one line) for a
    missing, empty, non-HDF5, unknown-layout or incomplete file, zero jets, or NaN/inf values.
    """
    path = Path(path)
    problem = file_problem(path, want="any")
    if problem == "does not exist":
        raise DataError(f"data file {path} does not exist; {_missing_hint()}")
    if problem is not None:
        raise DataError(f"data file {path} {problem}; point data.path at an HDF5 file")
    if path.is_dir():
        return _read_split_directory(path, cfg)
    if not path.is_file():
        raise DataError(f"data file {path} is not a regular file; point data.path at an HDF5 file")
    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty (0 bytes); regenerate it with `make data CONFIG=...`")
    if not h5py.is_hdf5(path):
        raise DataError(f"data file {path} is not an HDF5 file; accepted layouts: {'; '.join(LAYOUTS)}")
    try:
        with h5py.File(path, "r") as f:
            keys = set(f.keys())
            own = f.attrs.get("format") == FORMAT_NAME or "constituents" in keys
            dataset: JetDataset | None = None
            hls4ml = False
            if own:
                dataset = _read_own(f, path, cfg)
            elif PUBLIC_KEY in keys:
                pass
            elif is_hls4ml_file(keys):
                hls4ml = True
            else:
                found = ", ".join(sorted(keys)) or "nothing"
                raise DataError(
                    f"data file {path} is in neither accepted layout (it holds {found}); "
                    f"accepted: {'; '.join(LAYOUTS)}"
                )
    except OSError as err:
        raise DataError(f"data file {path} cannot be read as HDF5 ({err}); is it truncated?") from None
    # The other layouts are read after closing: their readers open the file themselves.
    if hls4ml:
        try:
            dataset = read_hls4ml(path, cfg)
        except OSError as err:
            raise DataError(f"data file {path} cannot be read as HDF5 ({err}); is it truncated?") from None
    elif dataset is None:
        dataset = read_public_chunks(path, cfg)
    check_four_vectors(dataset.constituents, path)
    log.info("read %s: %s", dataset.source, dataset.summary())
    return dataset


MAX_ABS_GEV = 1e8
"""Largest |E|, |p_i| accepted (GeV): 10^8 is far beyond any collider (and MeV files of the LHC stay below
it); a larger value is corrupt, and its square overflows float32 in the features and the teacher."""

MAX_UNPHYSICAL_FRACTION = 0.5
"""Particles with E < |p| beyond rounding: a few are tolerated (warned about); more than this share means
the four-vectors are not (E, px, py, pz), e.g. the columns are in another order."""

_ROUNDING = 1e-4  # relative: float32 massless particles have E = |p| to ~1e-7
_CHECK_CHUNK = (
    5_000  # jets per step (~32 MB of float64): the checks never hold more than one chunk's temporaries
)


def check_four_vectors(constituents: np.ndarray, path: Path) -> None:
    """Refuse four-vectors no stage could use, warn (with counts) about a minority of odd ones.

    A particle is real when E > 0 (the students' and the teacher's padding convention). Refused (DataError):
    a value above :data:`MAX_ABS_GEV`; no real particle in any jet (e.g. every energy negative: all would be
    read as padding); E < |p| for more than :data:`MAX_UNPHYSICAL_FRACTION` of the real particles.
    Warned: jets without any real particle, non-zero rows with E <= 0 (read as padding), and E < |p|.
    """
    n_jets = len(constituents)
    huge = dropped = unphysical = real_total = empty_jets = 0
    first_huge = -1
    for start in range(0, n_jets, _CHECK_CHUNK):
        c = np.asarray(constituents[start : start + _CHECK_CHUNK], dtype=np.float64)
        big = np.abs(c) > MAX_ABS_GEV
        if np.any(big) and first_huge < 0:
            first_huge = start + int(np.argwhere(big)[0][0])
        huge += int(np.count_nonzero(big))
        if huge:
            continue
        energy = c[:, :, 0]
        real = energy > 0
        nonzero = np.any(c != 0, axis=2)
        dropped += int(np.count_nonzero(nonzero & ~real))
        real_total += int(np.count_nonzero(real))
        empty_jets += int(np.count_nonzero(~real.any(axis=1)))
        p = np.linalg.norm(c[:, :, 1:], axis=2)
        unphysical += int(np.count_nonzero(real & (energy < p * (1 - _ROUNDING))))
    if huge:
        raise DataError(
            f"data file {path}: {huge} four-vector value(s) above {MAX_ABS_GEV:g} GeV in magnitude (first in jet "
            f"{first_huge}); the file is corrupt or not in GeV"
        )
    if real_total == 0:
        raise DataError(
            f"data file {path}: no jet has a particle with positive energy ({dropped} non-zero constituent "
            "row(s) have E <= 0 and would be read as padding); constituents must be (E, px, py, pz) with E > 0"
        )
    if unphysical > MAX_UNPHYSICAL_FRACTION * real_total:
        raise DataError(
            f"data file {path}: {unphysical} of {real_total} particles have E < |p| (not a four-momentum); "
            "constituents must be (E, px, py, pz) in this order"
        )
    if empty_jets:
        _warn_once(
            f"data file {path}: {empty_jets} of {n_jets} jets have no particle with E > 0 (read as empty)"
        )
    if dropped:
        _warn_once(f"data file {path}: {dropped} non-zero constituent row(s) with E <= 0 are read as padding")
    if unphysical:
        _warn_once(f"data file {path}: {unphysical} of {real_total} particles have E < |p|")


_WARNED: set[str] = set()
"""Warnings about a data file already logged by this process: every stage of a run reads the file, and
the same sentence once per stage hid the rest of the log."""


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


MIN_JETS_PER_SPLIT_CLASS = 2
"""Every split needs jets of both classes: training needs both labels, and an AUC or a background
rejection is undefined on one class. Two per class is the least that lets a test split have a ROC."""


def check_trainable(dataset: JetDataset, path: Path) -> None:
    """DataError (one line) when a split lacks jets of a class: the stages could not train or test on it."""
    counts = dataset.counts()
    short = [
        f"{split} has {n} {label}"
        for split, by_class in counts.items()
        for label, n in by_class.items()
        if n < MIN_JETS_PER_SPLIT_CLASS
    ]
    if short:
        what = "both top and QCD" if dataset.class_names == DEFAULT_CLASSES else "every class's"
        raise DataError(
            f"data file {path}: too few jets to train and test ({'; '.join(short)}; at least "
            f"{MIN_JETS_PER_SPLIT_CLASS} of each class per split are needed); use a file with {what} "
            "jets, or raise data.n_jets"
        )


def _fit_constituents(constituents: np.ndarray, max_constituents: int) -> np.ndarray:
    """Truncate or zero-pad axis 1 to ``max_constituents``."""
    n, m, _ = constituents.shape
    if m >= max_constituents:
        return np.ascontiguousarray(constituents[:, :max_constituents], dtype=np.float32)
    out = np.zeros((n, max_constituents, 4), dtype=np.float32)
    out[:, :m] = constituents
    return out


def _check_finite(array: np.ndarray, path: Path, what: str) -> None:
    bad = ~np.isfinite(array)
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        first_jet = int(np.argwhere(bad)[0][0])
        raise DataError(
            f"data file {path}: {n_bad} NaN/inf value(s) in {what} (first in jet {first_jet}); "
            "regenerate or clean the file"
        )


def _check_labels(is_signal: np.ndarray, path: Path, name: str) -> None:
    bad = ~np.isin(is_signal, (0, 1))
    if np.any(bad):
        raise DataError(
            f"data file {path}: {name} must be 0 or 1, found {int(np.count_nonzero(bad))} other value(s) "
            f"(first at jet {int(np.flatnonzero(bad)[0])})"
        )


def check_class_labels(labels: np.ndarray, classes: tuple[str, ...], path: Path, name: str) -> None:
    """DataError (one line) unless every label is a whole number 0..len(classes)-1."""
    bad = ~np.isin(labels, np.arange(len(classes)))
    if np.any(bad):
        raise DataError(
            f"data file {path}: {name} must hold 0..{len(classes) - 1} (the classes {', '.join(classes)}), "
            f"found {int(np.count_nonzero(bad))} other value(s) (first at jet {int(np.flatnonzero(bad)[0])})"
        )


def check_same_classes(file_classes: tuple[str, ...], cfg: Config, path: Path) -> None:
    """DataError (one line) when the file's classes (in label order) are not the config's ``data.classes``."""
    if tuple(file_classes) != tuple(cfg.data.classes):
        raise DataError(
            f"data file {path} holds the classes {', '.join(file_classes)} but data.classes is "
            f"{', '.join(cfg.data.classes)}; set data.classes to the file's classes (in this order) or use "
            "another file"
        )


def _own_classes(f: h5py.File, path: Path) -> tuple[str, ...]:
    """The ``classes`` attribute of our layout (a JSON list of names); files before it hold qcd and top."""
    raw = f.attrs.get("classes")
    if raw is None:
        return DEFAULT_CLASSES
    try:
        names = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (ValueError, UnicodeDecodeError):
        names = None
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise DataError(
            f"data file {path}: attribute classes must be a JSON list of at least two class names, "
            f"found {raw!r}; regenerate the file with `make data CONFIG=...`"
        )
    return tuple(names)


_OWN_SHAPES: dict[str, tuple[str, ...]] = {
    "constituents": ("N", "M", "4"),
    "n_constituents": ("N",),
    "is_signal": ("N",),
    "label": ("N",),
    "split": ("N",),
    "jet_p4": ("N", "4"),
    "truth_top_p4": ("N", "4"),
}
"""The shape of each dataset of our layout (letters: any length; digits: exactly that)."""


def _check_dataset(ds: h5py.Dataset, name: str, expected: tuple[str, ...], path: Path) -> None:
    """DataError unless ``ds`` holds real numbers (booleans for labels) of the ``expected`` rank and sizes."""
    want = f"({', '.join(expected)}{',' if len(expected) == 1 else ''})"
    kinds = "biuf" if name in ("is_signal", "label", "split", "n_constituents") else "iuf"
    if ds.dtype.kind not in kinds:
        raise DataError(
            f"data file {path}: dataset {name} has dtype {ds.dtype}, expected numbers of shape {want}; "
            "regenerate the file with `make data CONFIG=...`"
        )
    shape = tuple(ds.shape) if ds.shape is not None else ()
    fits = len(shape) == len(expected) and all(
        not e.isdigit() or s == int(e) for s, e in zip(shape, expected, strict=True)
    )
    if not fits:
        raise DataError(
            f"data file {path}: dataset {name} has shape {shape}, expected {want}; regenerate the file with "
            "`make data CONFIG=...`"
        )


def _read_own(f: h5py.File, path: Path, cfg: Config) -> JetDataset:
    classes = _own_classes(f, path)
    check_same_classes(classes, cfg, path)
    two = len(classes) == 2
    # Two-class files are read through is_signal (as before data.classes); N-class ones through label.
    label_name = "is_signal" if two else "label"
    required = tuple(label_name if name == "is_signal" else name for name in OWN_REQUIRED)
    # get(), not "in": a dangling soft or external link is "in" the file but cannot be opened.
    missing = [name for name in required if f.get(name) is None]
    if missing:
        raise DataError(
            f"data file {path} lacks dataset(s) {', '.join(missing)}; regenerate it with `make data CONFIG=...`"
        )
    not_data = [
        name
        for name in (*required, "label", *OWN_OPTIONAL)
        if f.get(name) is not None and not isinstance(f[name], h5py.Dataset)
    ]
    if not_data:
        raise DataError(
            f"data file {path}: {', '.join(not_data)} must be HDF5 dataset(s), found a group; "
            "regenerate the file with `make data CONFIG=...`"
        )
    for name, expected in _OWN_SHAPES.items():
        if f.get(name) is not None:
            _check_dataset(f[name], name, expected, path)
    shape = f["constituents"].shape
    n = shape[0]
    if n == 0:
        raise DataError(f"data file {path} holds zero jets; regenerate it with a positive data.n_jets")
    present = [o for o in ("label", *OWN_OPTIONAL) if o not in required and f.get(o) is not None]
    for name in (*required[1:], *present):
        if f[name].shape[0] != n:
            raise DataError(
                f"data file {path}: dataset {name} has {f[name].shape[0]} rows, constituents has {n}"
            )

    m = min(shape[1], cfg.data.max_constituents)
    constituents = _fit_constituents(f["constituents"][:, :m], cfg.data.max_constituents)
    _check_finite(constituents, path, "dataset constituents")
    extras = {}
    for name in OWN_OPTIONAL:
        if f.get(name) is not None:
            extras[name] = np.asarray(f[name][...], dtype=np.float64)
            _check_finite(extras[name], path, f"dataset {name}")
    labels = np.asarray(f[label_name][...])
    if two:
        _check_labels(labels, path, "is_signal")
        if f.get("label") is not None and not np.array_equal(np.asarray(f["label"][...]), labels):
            raise DataError(
                f"data file {path}: datasets label and is_signal disagree; regenerate the file with "
                "`make data CONFIG=...`"
            )
    else:
        check_class_labels(labels, classes, path, "dataset label")
    split = np.asarray(f["split"][...])
    bad_split = ~np.isin(split, (0, 1, 2))
    if np.any(bad_split):
        raise DataError(
            f"data file {path}: dataset split must hold 0 (train), 1 (val) or 2 (test) for every jet; found "
            f"{int(np.count_nonzero(bad_split))} other value(s) (first {split[bad_split][0]!r} at jet "
            f"{int(np.flatnonzero(bad_split)[0])})"
        )
    raw_counts = np.asarray(f["n_constituents"][...])
    bad_count = (raw_counts < 0) | (raw_counts > shape[1]) | (raw_counts != np.round(raw_counts))
    if np.any(bad_count):
        first = int(np.flatnonzero(bad_count)[0])
        raise DataError(
            f"data file {path}: dataset n_constituents must hold whole numbers 0..{shape[1]} (the constituents "
            f"per jet); found {int(np.count_nonzero(bad_count))} other value(s) (first {raw_counts[first]!r} "
            f"at jet {first})"
        )
    n_constituents = np.minimum(raw_counts.astype(np.int32), cfg.data.max_constituents)
    return JetDataset(
        constituents=constituents,
        n_constituents=n_constituents,
        labels=labels.astype(np.int8),
        split=split.astype(np.uint8),
        jet_p4=extras.get("jet_p4"),
        truth_top_p4=extras.get("truth_top_p4"),
        source=f"{path} (kd_trigger layout)",
        class_names=classes,
    )


PUBLIC_CHUNK_ROWS = 20_000
"""Rows read at a time from a Top Quark Tagging file: ~130 MB of float64 columns per chunk (806 columns),
so reading stays within the output arrays plus one chunk (the 1.2M-jet file is ~8 GB as one frame)."""


def _public_rows(path: Path) -> tuple[int, list[str]]:
    """(number of rows, column names) of the pandas frame under key 'table', without reading the rows."""
    import pandas as pd

    try:
        with warnings.catch_warnings(), pd.HDFStore(path, mode="r") as store:
            warnings.simplefilter("ignore")
            storer = store.get_storer(PUBLIC_KEY)
            if storer is None:
                raise KeyError(PUBLIC_KEY)
            head = store.select(PUBLIC_KEY, start=0, stop=1)
            # A "table"-format frame knows its row count; a "fixed" one its (rows, columns) shape.
            nrows = storer.nrows if storer.nrows is not None else storer.shape[0]
            if nrows <= 1:  # pandas stores an empty fixed frame as one dummy row: count what reads back
                nrows = len(store.select(PUBLIC_KEY, start=0, stop=2))
    except (KeyError, ValueError, TypeError, OSError, AttributeError) as err:
        raise DataError(
            f"data file {path}: key '{PUBLIC_KEY}' is not a pandas table ({err}); accepted: {'; '.join(LAYOUTS)}"
        ) from None
    if not isinstance(head, pd.DataFrame):
        raise DataError(
            f"data file {path}: key '{PUBLIC_KEY}' holds a {type(head).__name__}, not a DataFrame"
        )
    return int(nrows or 0), [str(c) for c in head.columns]


def _numeric(frame: Any, columns: list[str], path: Path, dtype: Any = np.float64) -> np.ndarray:
    """The columns as ``dtype``; DataError naming them when they hold text or other non-numbers."""
    try:
        return frame[columns].to_numpy(dtype=dtype)
    except (ValueError, TypeError) as err:
        raise DataError(
            f"data file {path}: column(s) {_names(columns)} must hold numbers ({err}); clean the file"
        ) from None


def read_public_chunks(path: Path, cfg: Config, chunk_rows: int = PUBLIC_CHUNK_ROWS) -> JetDataset:
    """A Top Quark Tagging file read ``chunk_rows`` rows at a time into preallocated float32 arrays."""
    import pandas as pd

    # The Top Quark Tagging files hold top (is_signal_new = 1) and QCD (0) jets only.
    check_same_classes(DEFAULT_CLASSES, cfg, path)
    n, columns = _public_rows(path)
    # The reference files hold 200 constituents; accept any count and truncate or pad to data.max_constituents.
    indices = {int(c.rsplit("_", 1)[1]) for c in columns if _is_component_column(c)}
    m_file = min(max(indices, default=PUBLIC_N_CONSTITUENTS - 1) + 1, cfg.data.max_constituents)
    wanted = [f"{c}_{i}" for i in range(m_file) for c in PUBLIC_COMPONENTS]
    missing = [c for c in (*wanted, PUBLIC_LABEL) if c not in columns]
    if missing:
        raise DataError(f"data file {path} (Top Quark Tagging layout) lacks column(s) {_names(missing)}")
    if n == 0:
        raise DataError(f"data file {path} holds zero jets")
    has_truth = all(c in columns for c in PUBLIC_TRUTH)
    constituents = np.zeros((n, cfg.data.max_constituents, 4), dtype=np.float32)
    is_signal = np.empty(n, dtype=np.float64)
    truth = np.zeros((n, 4), dtype=np.float64) if has_truth else None
    with warnings.catch_warnings(), pd.HDFStore(path, mode="r") as store:
        # PyTables warns about NaturalNameWarning-style trivia on some files; the checks below are ours.
        warnings.simplefilter("ignore")
        for start in tqdm(
            range(0, n, chunk_rows), desc=f"reading {path.name}", unit="chunk", disable=n <= chunk_rows
        ):
            frame = store.select(PUBLIC_KEY, start=start, stop=min(start + chunk_rows, n))
            # Columns are (E_0, PX_0, PY_0, PZ_0, E_1, ...): a reshape gives (rows, M, 4) = (E, px, py, pz).
            flat = _numeric(frame, wanted, path, np.float32)
            bad = ~np.isfinite(flat)
            if np.any(bad):
                # Reported at the first chunk that has any: a clear error now beats a count over GBs.
                bad_cols = [wanted[j] for j in np.flatnonzero(bad.any(axis=0))]
                raise DataError(
                    f"data file {path}: {int(np.count_nonzero(bad))} NaN/inf value(s) in column(s) "
                    f"{_names(bad_cols)} (first in jet {start + int(np.argwhere(bad)[0][0])}"
                    f"{'' if n <= chunk_rows else f', among jets {start}-{start + len(frame) - 1}'}); clean the file"
                )
            stop = start + len(frame)
            constituents[start:stop, :m_file] = flat.reshape(len(frame), m_file, 4)
            is_signal[start:stop] = _numeric(frame, [PUBLIC_LABEL], path)[:, 0]
            if truth is not None:
                truth[start:stop] = _numeric(frame, list(PUBLIC_TRUTH), path)
    _check_finite(is_signal, path, f"column {PUBLIC_LABEL}")
    _check_labels(is_signal, path, PUBLIC_LABEL)
    if truth is not None:
        _check_finite(truth, path, f"columns {', '.join(PUBLIC_TRUTH)}")
    labels = is_signal.astype(np.int8)
    return JetDataset(
        constituents=constituents,
        n_constituents=np.count_nonzero(constituents[:, :, 0] > 0, axis=1).astype(np.int32),
        labels=labels,
        split=assign_split(labels, cfg.data.split, cfg.run.seed),
        jet_p4=jet_kinematics(constituents),
        truth_top_p4=truth,
        source=f"{path} (Top Quark Tagging layout)",
    )


PUBLIC_SPLIT_FILES = ("train.h5", "val.h5", "test.h5")
"""A directory as ``data.path``: the three files of the public Top Quark Tagging release, whose split is
theirs (not drawn from run.seed); or, without any of them, the ``*.h5`` files of the hls4ml jet data set."""


def _read_hls4ml_directory(path: Path, files: list[Path], cfg: Config) -> JetDataset:
    """Every ``*.h5`` file of ``path`` (sorted by name), each of the hls4ml jet layout, as one data set."""
    for file in files:
        problem = None
        if not h5py.is_hdf5(file):
            problem = "is not an HDF5 file"
        else:
            try:
                with h5py.File(file, "r") as f:
                    if not is_hls4ml_file(set(f.keys())):
                        problem = "is not of the hls4ml jet layout"
            except OSError as err:
                problem = f"cannot be read as HDF5 ({err})"
        if problem:
            raise DataError(
                f"data directory {path}: {file.name} {problem}; a directory as data.path holds the Top Quark "
                f"Tagging files {', '.join(PUBLIC_SPLIT_FILES)} or only files of {HLS4ML_LAYOUT}"
            )
    try:
        dataset = read_hls4ml_files(
            files, cfg, source=f"{path} ({len(files)} files of the hls4ml jet layout)"
        )
    except OSError as err:
        raise DataError(
            f"data directory {path}: a file cannot be read as HDF5 ({err}); is it truncated?"
        ) from None
    return dataset


def _read_split_directory(path: Path, cfg: Config) -> JetDataset:
    missing = [name for name in PUBLIC_SPLIT_FILES if not (path / name).is_file()]
    h5_files = sorted(p for p in path.glob("*.h5") if p.is_file())
    if len(missing) == len(PUBLIC_SPLIT_FILES) and h5_files:
        return _read_hls4ml_directory(path, h5_files, cfg)
    if missing:
        raise DataError(
            f"data directory {path} lacks {', '.join(missing)}; a directory as data.path must hold the "
            f"Top Quark Tagging files {', '.join(PUBLIC_SPLIT_FILES)}"
        )
    parts = []
    for name in PUBLIC_SPLIT_FILES:
        part = load_jets(path / name, cfg)
        part.split[:] = SPLIT_CODES[name.removesuffix(".h5")]
        parts.append(part)
    return JetDataset(
        constituents=np.concatenate([p.constituents for p in parts]),
        n_constituents=np.concatenate([p.n_constituents for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        split=np.concatenate([p.split for p in parts]),
        jet_p4=np.concatenate([p.jet_p4 for p in parts])
        if all(p.jet_p4 is not None for p in parts)
        else None,
        truth_top_p4=(
            np.concatenate([p.truth_top_p4 for p in parts])
            if all(p.truth_top_p4 is not None for p in parts)
            else None
        ),
        source=f"{path} (Top Quark Tagging train/val/test files)",
    )
