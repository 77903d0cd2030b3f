"""The data stage: jets of the classes ``data.classes`` (default top and QCD) from Pythia 8 + FastJet into
one reproducible HDF5 file.

Reproducibility: each class is cut into fixed chunks of ``data.generator.chunk_jets`` jets, each with
its own Pythia seed derived from (run.seed, class name, chunk index). Workers may finish chunks in any
order; the chunks are assembled in order, then the jets are shuffled and split with generators seeded
from run.seed alone. With ``track_times=False`` on every dataset the file is byte-identical for the
same config and seed whatever the number of workers.

``data.n_jets`` must be a multiple of the number of classes: the file holds exactly ``n_jets / N`` jets
of each class (with the default two, ``n_jets / 2`` top and ``n_jets / 2`` QCD jets).

Datasets (see :mod:`kd_trigger.data.dataset`): ``constituents``, ``n_constituents``, ``is_signal`` (two
classes only), ``jet_p4``, ``truth_top_p4``, ``split``, then ``label`` (int8, index into the ``classes``
attribute, a JSON list of names), ``truth_p4`` (float32 E, px, py, pz of the matched top, W/Z or parton;
zeros for ``qcd``) and ``truth_pdg_id`` (int32, 0 for ``qcd``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from tqdm import tqdm

from kd_trigger.config.data import DEFAULT_CLASSES
from kd_trigger.data.dataset import FORMAT_NAME, FORMAT_VERSION, JetDataset, assign_split
from kd_trigger.data.pythia_worker import (
    PROCESSES,
    PYTHIA_SEED_MAX,
    ChunkResult,
    ChunkTask,
    generate_chunk,
)
from kd_trigger.data.readers import check_trainable, load_jets
from kd_trigger.errors import ConfigError, DataError, OutputError, StaleOutputError
from kd_trigger.layout import DataFiles, RunLayout
from kd_trigger.runs import (
    ensure_writable_dir,
    file_problem,
    package_versions,
    write_h5_atomic,
    write_json_atomic,
)
from kd_trigger.stage_types import StageContext, StageDecl, StageResult

if TYPE_CHECKING:
    from kd_trigger.config import Config  # annotations only: the stage reads its section, not the schema

log = logging.getLogger(__name__)


def chunk_seed(
    run_seed: int, label: int, chunk_index: int, classes: tuple[str, ...] = DEFAULT_CLASSES
) -> int:
    """Pythia seed (1..900000000) of one chunk, a pure function of (run seed, class name, chunk index).

    ``label`` indexes ``classes``; the seed depends on the class's process name only (``t`` and ``top``
    share seeds), not on its label or on the other classes, so a class gets the same jets in any file.
    """
    name = PROCESSES[classes[label]].seed_name
    digest = hashlib.sha256(f"kd_trigger:{run_seed}:{name}:{chunk_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % PYTHIA_SEED_MAX + 1


def check_n_jets(cfg: Config) -> int:
    """The jets per class; ConfigError when ``data.n_jets`` is not a multiple of the number of classes
    (checked without planning any chunk)."""
    n_jets, classes = cfg.data.n_jets, cfg.data.classes
    if classes == DEFAULT_CLASSES and n_jets % 2:
        raise ConfigError(
            f"data.n_jets must be even (the file holds n_jets/2 top and n_jets/2 QCD jets), got {n_jets}"
        )
    if n_jets % len(classes):
        raise ConfigError(
            f"data.n_jets must be a multiple of {len(classes)} (the file holds n_jets/{len(classes)} jets of "
            f"each class in data.classes: {', '.join(classes)}), got {n_jets}"
        )
    return n_jets // len(classes)


def n_chunks(cfg: Config) -> int:
    """How many chunks :func:`iter_chunks` yields (all classes), computed without planning them."""
    return len(cfg.data.classes) * -(-check_n_jets(cfg) // cfg.data.generator.chunk_jets)


def iter_chunks(cfg: Config) -> Iterator[ChunkTask]:
    """The chunks that make up the file, classes from the last label down (top chunks first for the
    default two), each class in chunk order, one at a time.

    Lazy: a check (``status``) never holds the plan in memory, whatever ``data.n_jets`` is.
    """
    per_class = check_n_jets(cfg)
    chunk_jets = cfg.data.generator.chunk_jets
    generator = cfg.data.generator.model_dump(mode="json")
    classes = cfg.data.classes
    for label in reversed(range(len(classes))):
        for index, start in enumerate(range(0, per_class, chunk_jets)):
            yield ChunkTask(
                label=label,
                name=classes[label],
                chunk_index=index,
                n_jets=min(chunk_jets, per_class - start),
                seed=chunk_seed(cfg.run.seed, label, index, classes),
                generator=generator,
                max_constituents=cfg.data.max_constituents,
            )


def plan_chunks(cfg: Config) -> list[ChunkTask]:
    """Every chunk of :func:`iter_chunks` as a list (generation holds them all anyway)."""
    return list(iter_chunks(cfg))


def _workers(cfg: Config, n_tasks: int) -> int:
    requested = cfg.data.workers if cfg.data.workers is not None else (os.cpu_count() or 1)
    return max(1, min(requested, n_tasks))


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (the pool's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def generate_jets(cfg: Config) -> dict[str, np.ndarray]:
    """Generate ``cfg.data.n_jets`` balanced jets; returns the arrays of the file, shuffled and split."""
    tasks = plan_chunks(cfg)
    workers = _workers(cfg, len(tasks))
    results: dict[tuple[int, int], ChunkResult] = {}
    start = time.perf_counter()
    cpu_start_s = _cpu_seconds()
    classes = cfg.data.classes
    log.info(
        "generating %d jets (%d each of %s) in %d chunks with %d worker(s)",
        cfg.data.n_jets,
        cfg.data.n_jets // len(classes),
        ", ".join(classes),
        len(tasks),
        workers,
    )
    with tqdm(total=cfg.data.n_jets, unit="jet", desc="generating jets", smoothing=0.1) as bar:
        if workers == 1:
            for task in tasks:
                result = generate_chunk(task)
                results[(result.label, result.chunk_index)] = result
                bar.update(task.n_jets)
        else:
            # spawn, not fork: the parent may already hold TensorFlow's threads (distill runs this stage).
            context = multiprocessing.get_context("spawn")
            with context.Pool(processes=workers) as pool:
                for result in pool.imap_unordered(generate_chunk, tasks):
                    results[(result.label, result.chunk_index)] = result
                    bar.update(result.constituents.shape[0])
                # Let the workers exit normally so their CPU time is counted below.
                pool.close()
                pool.join()
    elapsed_s = time.perf_counter() - start
    cpu_s = _cpu_seconds() - cpu_start_s
    n_events = sum(r.n_events for r in results.values())
    log.info(
        "generated %d jets from %d Pythia events in %.1f s: %.1f jets/s with %d worker(s) (%.1f jets per CPU-second)",
        cfg.data.n_jets,
        n_events,
        elapsed_s,
        cfg.data.n_jets / elapsed_s,
        workers,
        cfg.data.n_jets / max(cpu_s, 1e-9),
    )

    for label, name in enumerate(classes):
        events = sum(r.n_events for r in results.values() if r.label == label)
        jets = sum(len(r.n_constituents) for r in results.values() if r.label == label)
        log.info(
            "class %s: %d jets from %d events (%.1f events per jet)",
            name,
            jets,
            events,
            events / max(jets, 1),
        )

    ordered = [results[(t.label, t.chunk_index)] for t in tasks]
    labels = np.concatenate([np.full(len(r.n_constituents), r.label, dtype=np.int8) for r in ordered])
    arrays = {
        "constituents": np.concatenate([r.constituents for r in ordered]),
        "n_constituents": np.concatenate([r.n_constituents for r in ordered]),
        "label": labels,
        "jet_p4": np.concatenate([r.jet_p4 for r in ordered]),
        "truth_top_p4": np.concatenate([r.truth_top_p4 for r in ordered]),
        "truth_p4": np.concatenate([r.truth_p4 for r in ordered]),
        "truth_pdg_id": np.concatenate([r.truth_pdg_id for r in ordered]),
    }
    if len(classes) == 2:
        arrays["is_signal"] = labels
    # Interleave the classes so any prefix of the file is balanced-ish and shuffled.
    order = np.random.default_rng([cfg.run.seed, 0x5AFF1E]).permutation(cfg.data.n_jets)
    arrays = {name: value[order] for name, value in arrays.items()}
    arrays["split"] = assign_split(arrays["label"], cfg.data.split, cfg.run.seed)
    return arrays


def write_jets_file(path: Path, arrays: dict[str, np.ndarray], cfg: Config) -> Path:
    """Write the arrays to ``path`` (atomically) with deterministic attributes and no timestamps.

    ``label`` may be left out of two-class arrays: it is then ``is_signal``.
    """
    if "label" not in arrays:
        arrays = {**arrays, "label": arrays["is_signal"]}
    attrs = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "seed": cfg.run.seed,
        "n_jets": int(arrays["label"].shape[0]),
        "max_constituents": int(arrays["constituents"].shape[1]),
        "generator": json.dumps(cfg.data.generator.model_dump(mode="json"), sort_keys=True),
        "split_fractions": json.dumps(cfg.data.split.model_dump(mode="json"), sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "columns": json.dumps(
            {
                "constituents": "E, px, py, pz [GeV], pT-ordered, zero-padded",
                "jet_p4": "pt [GeV], eta, phi, mass [GeV] of the anti-kt jet",
                "truth_top_p4": "E, px, py, pz [GeV] of the matched top (zeros for QCD)",
                "split": "0 train, 1 val, 2 test",
            },
            sort_keys=True,
        ),
        # After the attributes of two-class files before data.classes, which keep their values.
        "classes": json.dumps(list(cfg.data.classes)),
    }
    # Creation order: the datasets of two-class files before data.classes first, then the new ones.
    dtypes = {
        "constituents": np.float32,
        "n_constituents": np.int32,
        "is_signal": np.int8,
        "jet_p4": np.float32,
        "truth_top_p4": np.float32,
        "split": np.uint8,
        "label": np.int8,
        "truth_p4": np.float32,
        "truth_pdg_id": np.int32,
    }
    dtypes = {name: dtype for name, dtype in dtypes.items() if name in arrays}

    def fill(f: h5py.File) -> None:
        for key, value in attrs.items():
            f.attrs[key] = value
        for name, dtype in dtypes.items():
            data = np.ascontiguousarray(arrays[name], dtype=dtype)
            options = {}
            if data.size:
                # Mostly zero padding: gzip shrinks the file several times over and is deterministic.
                # Explicit chunk shapes (about 1 MiB of whole jets) keep the layout independent of
                # h5py's auto-chunking heuristics.
                row_bytes = max(1, data[0].nbytes)
                rows = max(1, min(data.shape[0], (1 << 20) // row_bytes))
                options = {
                    "compression": "gzip",
                    "compression_opts": 4,
                    "shuffle": True,
                    "chunks": (rows, *data.shape[1:]),
                }
            f.create_dataset(name, data=data, track_times=False, **options)

    write_h5_atomic(path, fill)
    return path


def write_summary(path: Path, dataset: JetDataset, source: Path) -> Path:
    """``summary.json`` of the data stage: what the downstream stages will read, per split and class."""
    summary: dict[str, object] = {
        "source": str(source),
        "n_jets": len(dataset),
        "max_constituents": dataset.max_constituents,
        "counts": dataset.counts(),
    }
    if dataset.class_names == DEFAULT_CLASSES:
        summary["top_mass_median_gev"] = dataset.median_mass(1)
        summary["qcd_mass_median_gev"] = dataset.median_mass(0)
    else:
        summary["classes"] = list(dataset.class_names)
        summary["mass_median_gev"] = {
            name: dataset.median_mass(label) for label, name in enumerate(dataset.class_names)
        }
    return write_json_atomic(path, summary)


def data_stage(ctx: StageContext) -> StageResult:
    """The data stage: generate ``artifacts/<run>/data/jets.h5``, or validate the file ``data.path`` names.

    Either way ``data/summary.json`` records the jets per split and class; a file the later stages
    could not train or test on (one class, too few jets in a split) is refused here, before any training.
    """
    cfg = ctx.cfg
    files = DataFiles(ctx.out(RunLayout.of(cfg).data_dir))
    files.root.mkdir(parents=True, exist_ok=True)
    if cfg.data.path:
        dataset = load_jets(cfg.data_path, cfg)
        check_trainable(dataset, cfg.data_path)
        write_summary(files.summary, dataset, cfg.data_path)
        log.info("data.path %s: %s", cfg.data_path, dataset.summary())
        return StageResult(extra={"n_jets": len(dataset)})
    path = write_jets_file(files.jets, generate_jets(cfg), cfg)
    dataset = load_jets(path, cfg)
    check_trainable(dataset, cfg.data_path)
    write_summary(files.summary, dataset, cfg.data_path)
    return StageResult(extra={"n_jets": len(dataset)})


def generate_to_file(cfg: Config, out: Path, force: bool = False) -> Path:
    """``kd-trigger data --out FILE``: generate the config's jets straight into ``out`` (no run bookkeeping)."""
    out = Path(out)
    if cfg.data.path:
        raise ConfigError(
            f"data --out generates new jets, but data.path is set ({cfg.data.path}); drop --out to check that "
            "file, or remove data.path to generate"
        )
    if out.exists() and not force:
        raise StaleOutputError(f"{out} already exists; choose another --out or pass --force to overwrite it")
    if out.exists() and not out.is_file():
        raise OutputError(f"--out {out} is not a regular file")
    ensure_writable_dir(out.parent, "--out directory")
    check_n_jets(cfg)  # bad n_jets fails before any work
    return write_jets_file(out, generate_jets(cfg), cfg)


# -- the stage declaration ------------------------------------------------------------------------
def _data_config(cfg: Config) -> dict[str, Any]:
    data = cfg.data.model_dump(mode="json")
    data.pop("workers")  # the number of processes never changes the bytes produced
    data.pop("path")  # a given file is fingerprinted by content instead
    return {"seed": cfg.run.seed, "data": data}


def _data_outputs(cfg: Config) -> list[Path]:
    return [RunLayout.of(cfg).data_dir]


def _data_inputs(cfg: Config) -> list[Path]:
    return [cfg.data_path] if cfg.data.path else []


def check_data(cfg: Config) -> None:
    """DataError for a ``data.path`` that is no readable file; ConfigError for a jet count that cannot
    fill every split (before any work)."""
    if cfg.data.path:
        problem = file_problem(Path(cfg.data.path), want="any")
        if problem is not None:
            raise DataError(f"data.path {cfg.data.path} {problem}; point it at an HDF5 jet file or remove it")
    else:
        check_n_jets(cfg)


STAGE = StageDecl(
    "data",
    data_stage,
    _data_config,
    _data_outputs,
    inputs=_data_inputs,
    check=check_data,
    description="generate jets with Pythia 8 + FastJet, or validate data.path",
)
