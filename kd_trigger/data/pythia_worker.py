"""One chunk of jets from Pythia 8 + FastJet, run inside a worker process (or in-process for one worker).

A chunk is a fixed number of jets of one class generated from one Pythia seed. Its content depends only
on the chunk's task (class, seed, size, generator settings), never on which process ran it or what ran
before, so assembling chunks in order gives the same file for any number of workers.

Speed: a Python copy of every particle of every event costs as much as generating it. Pythia's own
SlowJet (anti-kt through its embedded fjcore, in C++) clusters each event first; only events whose
leading jet can pass the cuts are copied out and clustered with FastJet, whose jets are the ones kept.
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from kd_trigger.errors import DataError

LABEL_QCD = 0
LABEL_TOP = 1
"""Labels of the default two-class file (``data.classes = [qcd, top]``)."""


@dataclass(frozen=True)
class JetProcess:
    """How the jets of one class are made: the Pythia processes and the truth match of the leading jet."""

    settings: tuple[str, ...]
    """Pythia ``readString`` lines that switch the hard processes (and decays) on."""
    match: str
    """``none`` (any jet), ``top`` (t, b, q, q' in the jet), ``boson`` (W/Z and both decay quarks in the
    jet) or ``parton`` (the outgoing hard parton nearest to the jet is of the wanted kind)."""
    pdg_ids: tuple[int, ...] = ()
    """|PDG id| of the matched object: 6 (top), 24 (W), 23 (Z), 1-3 (light quarks), 21 (gluon)."""
    seed_name: str = ""
    """The name chunk seeds are derived from (``t`` shares ``top``'s: the same jets for the same seed)."""


_HADRONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
_TTBAR = ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_HADRONIC_W)

PROCESSES: dict[str, JetProcess] = {
    # Today's background: every 2 -> 2 QCD process, no matching (the Top Quark Tagging recipe).
    "qcd": JetProcess(("HardQCD:all = on",), "none", (), "qcd"),
    # Hadronic ttbar: both W bosons decay to quarks (d u s c b), so every top is hadronic.
    "top": JetProcess(_TTBAR, "top", (6,), "top"),
    "t": JetProcess(_TTBAR, "top", (6,), "top"),
    # Hadronic diboson production: each boson decays to quarks, the jet holds the boson and both quarks.
    "w": JetProcess(("WeakDoubleBoson:ffbar2WW = on", *_HADRONIC_W), "boson", (24,), "w"),
    # gmZmode = 2: pure Z (no gamma* part, which would add low-mass pairs that are no Z jets).
    "z": JetProcess(
        (
            "WeakDoubleBoson:ffbar2gmZgmZ = on",
            "WeakZ0:gmZmode = 2",
            "23:onMode = off",
            "23:onIfAny = 1 2 3 4 5",
        ),
        "boson",
        (23,),
        "z",
    ),
    # Light-quark (u, d, s) jets: every 2 -> 2 QCD process with an outgoing light quark. The processes
    # without one (gg -> gg, qqbar -> gg, heavy-flavour pairs) could never give a matched jet, so leaving
    # them out changes no jet distribution, only saves their events.
    "q": JetProcess(
        (
            "HardQCD:qq2qq = on",
            "HardQCD:qqbar2qqbarNew = on",
            "HardQCD:qg2qg = on",
            "HardQCD:gg2qqbar = on",
        ),
        "parton",
        (1, 2, 3),
        "q",
    ),
    # Gluon jets: likewise every 2 -> 2 QCD process with an outgoing gluon.
    "g": JetProcess(
        ("HardQCD:gg2gg = on", "HardQCD:qqbar2gg = on", "HardQCD:qg2qg = on"), "parton", (21,), "g"
    ),
}
"""The jet classes the generator knows, by ``data.classes`` name."""

# Pythia's Random:seed accepts 1..900000000 as fixed seeds (0 means "from the clock": never use it).
PYTHIA_SEED_MAX = 900_000_000

# SlowJet pre-filter margins: the pre-filter must accept a superset of the FastJet selection.
# Both cluster the same visible particles with the same algorithm, so a small margin is plenty.
_PREFILTER_PT_MARGIN_GEV = 5.0
# SlowJet reports rapidity y; |y| <= |eta| for a massive jet, so the eta cut on y is already a superset.
_PREFILTER_ETA_MARGIN = 0.05

# The SlowJet and FastJet jet axes agree; the margin only guards against rounding differences.
_PREFILTER_DR_MARGIN = 0.05

# Give up on a chunk after this many events per requested jet (a misconfigured window accepts nothing).
_MAX_EVENTS_PER_JET = 200


@dataclass(frozen=True)
class ChunkTask:
    """What one worker call generates: ``n_jets`` jets of class ``label`` from Pythia seed ``seed``."""

    label: int
    name: str
    """The class name (a key of :data:`PROCESSES`)."""
    chunk_index: int
    n_jets: int
    seed: int
    generator: dict[str, Any]
    """GeneratorConfig.model_dump(): plain values so the task pickles cheaply."""
    max_constituents: int


@dataclass
class ChunkResult:
    """Arrays of one chunk; see kd_trigger.data.dataset for their layout."""

    label: int
    chunk_index: int
    constituents: np.ndarray  # (n, M, 4) float32 E, px, py, pz
    n_constituents: np.ndarray  # (n,) int32
    jet_p4: np.ndarray  # (n, 4) float64 pt, eta, phi, mass
    truth_top_p4: np.ndarray  # (n, 4) float64 E, px, py, pz (zeros but for top jets)
    truth_p4: np.ndarray  # (n, 4) float64 E, px, py, pz of the matched top/boson/parton (zeros for qcd)
    truth_pdg_id: np.ndarray  # (n,) int32 signed PDG id of the matched object (0 for qcd)
    n_events: int
    """Events Pythia generated for this chunk (accepted or not)."""


def pythia_settings(name: str, generator: dict[str, Any], seed: int) -> list[str]:
    """Pythia ``readString`` lines for the class ``name``, taken from the generator config."""
    if not 1 <= seed <= PYTHIA_SEED_MAX:
        raise ValueError(f"Pythia seed must be in 1..{PYTHIA_SEED_MAX}, got {seed}")
    lines = [
        "Beams:idA = 2212",
        "Beams:idB = 2212",
        f"Beams:eCM = {generator['sqrt_s_gev']!r}",
        f"PhaseSpace:pTHatMin = {generator['pthat_min_gev']!r}",
        f"PartonLevel:MPI = {'on' if generator['mpi'] else 'off'}",
        "HadronLevel:all = on",
        "Print:quiet = on",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
    ]
    return lines + list(PROCESSES[name].settings)


@contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send the C++ libraries' stdout (the FastJet banner, Pythia notes) to /dev/null meanwhile.

    Done at the file-descriptor level because the text comes from C++ ``std::cout``, which Python's
    ``sys.stdout`` never sees; the C stdio buffer is flushed before fd 1 is restored so nothing leaks.
    """
    sys.stdout.flush()
    libc = ctypes.CDLL(None)
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _delta_r(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    dphi = (phi1 - phi2 + math.pi) % (2.0 * math.pi) - math.pi
    return math.hypot(eta1 - eta2, dphi)


def _eta_phi(px: float, py: float, pz: float) -> tuple[float, float]:
    pt = math.hypot(px, py)
    return math.asinh(pz / pt) if pt > 0 else math.copysign(1e9, pz), math.atan2(py, px)


def _within(particles: list[Any], jet_eta: float, jet_phi: float, max_dr: float) -> bool:
    return all(_delta_r(*_eta_phi(p.px(), p.py(), p.pz()), jet_eta, jet_phi) < max_dr for p in particles)


def _p4(particle: Any) -> tuple[float, float, float, float]:
    return (particle.e(), particle.px(), particle.py(), particle.pz())


def _matched_top(
    process: Any, jet_eta: float, jet_phi: float, max_dr: float
) -> tuple[tuple[float, ...], int] | None:
    """(E, px, py, pz) and PDG id of a hard-process top whose t, b, q, q' all lie within ``max_dr`` of the jet.

    Uses Pythia's hard-process record (a dozen entries), where each top decays to W + b and each W
    to q q' before showering.
    """
    for i in range(process.size()):
        top = process[i]
        if top.idAbs() != 6:
            continue
        daughters = [process[j] for j in top.daughterList()]
        w_bosons = [d for d in daughters if d.idAbs() == 24]
        others = [d for d in daughters if d.idAbs() != 24]
        if len(w_bosons) != 1 or len(others) != 1:
            continue
        quarks = [process[j] for j in w_bosons[0].daughterList()]
        partons = [top, others[0], *quarks]
        if len(quarks) != 2:
            continue
        if _within(partons, jet_eta, jet_phi, max_dr):
            return _p4(top), top.id()
    return None


def _matched_boson(
    process: Any, pdg_id: int, jet_eta: float, jet_phi: float, max_dr: float
) -> tuple[tuple[float, ...], int] | None:
    """(E, px, py, pz) and PDG id of a hard-process W/Z (``|id| = pdg_id``) that lies, with both its decay
    quarks, within ``max_dr`` of the jet."""
    for i in range(process.size()):
        boson = process[i]
        if boson.idAbs() != pdg_id:
            continue
        quarks = [process[j] for j in boson.daughterList()]
        if len(quarks) != 2 or not all(1 <= q.idAbs() <= 5 for q in quarks):
            continue
        if _within([boson, *quarks], jet_eta, jet_phi, max_dr):
            return _p4(boson), boson.id()
    return None


def _matched_parton(
    process: Any, pdg_ids: tuple[int, ...], jet_eta: float, jet_phi: float, max_dr: float, nearest: bool
) -> tuple[tuple[float, ...], int] | None:
    """(E, px, py, pz) and id of the outgoing hard parton (status 23) matched to the jet, if of ``pdg_ids``.

    ``nearest``: the parton nearest to the jet must be within ``max_dr`` and of the wanted kind (a jet
    is labelled by the parton it comes from). Without it, any wanted parton within ``max_dr`` matches:
    the looser test the SlowJet pre-filter needs, a superset of the nearest-parton one.
    """
    outgoing = [process[i] for i in range(process.size()) if process[i].status() == 23]
    scored = sorted(
        ((_delta_r(*_eta_phi(p.px(), p.py(), p.pz()), jet_eta, jet_phi), i) for i, p in enumerate(outgoing)),
    )
    for dr, i in scored:
        if dr >= max_dr:
            return None
        if outgoing[i].idAbs() in pdg_ids:
            return _p4(outgoing[i]), outgoing[i].id()
        if nearest:
            return None
    return None


def truth_match(
    kind: JetProcess, process: Any, jet_eta: float, jet_phi: float, max_dr: float, prefilter: bool = False
) -> tuple[tuple[float, ...], int] | None:
    """The matched object of a jet: ((E, px, py, pz), PDG id), or None when the jet does not match.

    Classes without matching (``qcd``) match every jet with a zero four-vector and id 0.
    """
    if kind.match == "none":
        return (0.0, 0.0, 0.0, 0.0), 0
    if kind.match == "top":
        return _matched_top(process, jet_eta, jet_phi, max_dr)
    if kind.match == "boson":
        return _matched_boson(process, kind.pdg_ids[0], jet_eta, jet_phi, max_dr)
    return _matched_parton(process, kind.pdg_ids, jet_eta, jet_phi, max_dr, nearest=not prefilter)


def _pt_ordered(particles: list[tuple[float, float, float, float]], max_constituents: int) -> np.ndarray:
    """(M, 4) float32 E, px, py, pz of the leading particles, zero padded.

    Ordered by the pT of the float32 values actually stored, so the file is exactly pT-ordered.
    """
    arr = np.asarray(particles, dtype=np.float64)[:, [3, 0, 1, 2]].astype(np.float32)
    pt = np.hypot(arr[:, 1].astype(np.float64), arr[:, 2].astype(np.float64))
    order = np.argsort(-pt, kind="stable")[:max_constituents]
    out = np.zeros((max_constituents, 4), dtype=np.float32)
    out[: len(order)] = arr[order]
    return out


def generate_chunk(task: ChunkTask) -> ChunkResult:
    """Generate ``task.n_jets`` accepted jets of one class (the pool's worker function)."""
    with quiet_stdout():
        return _generate_chunk(task)


def _generate_chunk(task: ChunkTask) -> ChunkResult:
    import fastjet
    import pythia8mc

    gen = task.generator
    pythia = pythia8mc.Pythia("", False)
    kind = PROCESSES[task.name]
    # Top jets keep today's configurable match radius; bosons and partons are matched within the jet radius.
    match_dr = float(gen["top_match_dr"]) if kind.match == "top" else float(gen["jet_radius"])
    for line in pythia_settings(task.name, gen, task.seed):
        if not pythia.readString(line):
            raise DataError(f"Pythia rejected the setting {line!r}; check data.generator")
    if not pythia.init():
        raise DataError(
            f"Pythia failed to initialise (seed {task.seed}); check data.generator (sqrt_s_gev, pthat_min_gev)"
        )

    radius = float(gen["jet_radius"])
    pt_min, pt_max = float(gen["jet_pt_min_gev"]), float(gen["jet_pt_max_gev"])
    eta_max = float(gen["jet_abs_eta_max"])
    # select=2: visible final-state particles (no neutrinos); massSet=2: their real masses; fjcore on.
    slow_jet = pythia8mc.SlowJet(
        -1, radius, max(pt_min - _PREFILTER_PT_MARGIN_GEV, 1.0), 1e3, 2, 2, None, True
    )
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, radius)

    m = task.max_constituents
    constituents = np.zeros((task.n_jets, m, 4), dtype=np.float32)
    n_constituents = np.zeros(task.n_jets, dtype=np.int32)
    jet_p4 = np.zeros((task.n_jets, 4), dtype=np.float64)
    truth = np.zeros((task.n_jets, 4), dtype=np.float64)
    truth_id = np.zeros(task.n_jets, dtype=np.int32)

    event = pythia.event
    n_accepted = 0
    n_events = 0
    max_events = _MAX_EVENTS_PER_JET * task.n_jets + 1000
    while n_accepted < task.n_jets:
        if n_events >= max_events:
            raise DataError(
                f"{task.name} chunk {task.chunk_index}: only {n_accepted} of {task.n_jets} jets accepted after "
                f"{n_events} events; check data.generator (pT window, pthat_min_gev)"
            )
        n_events += 1
        if not pythia.next():
            continue
        slow_jet.analyze(event)
        if slow_jet.sizeJet() == 0:
            continue
        sj_pt = slow_jet.pT(0)
        if not (pt_min - _PREFILTER_PT_MARGIN_GEV <= sj_pt <= pt_max + _PREFILTER_PT_MARGIN_GEV):
            continue
        if abs(slow_jet.y(0)) >= eta_max + _PREFILTER_ETA_MARGIN:
            continue
        if kind.match != "none":
            # Skip the copy and FastJet for events whose SlowJet jet matches nothing (about half of the tops).
            sj_p4 = slow_jet.p(0)
            dr = match_dr + _PREFILTER_DR_MARGIN
            if truth_match(kind, pythia.process, sj_p4.eta(), sj_p4.phi(), dr, prefilter=True) is None:
                continue

        particles = [(p.px(), p.py(), p.pz(), p.e()) for p in event if p.isFinal() and p.isVisible()]
        pseudojets = [fastjet.PseudoJet(*p) for p in particles]
        sequence = fastjet.ClusterSequence(pseudojets, jet_def)
        jets = fastjet.sorted_by_pt(sequence.inclusive_jets())
        if not jets:
            continue
        jet = jets[0]
        if not (pt_min <= jet.pt() <= pt_max and abs(jet.eta()) < eta_max):
            continue
        jet_eta, jet_phi = jet.eta(), jet.phi_std()
        matched = truth_match(kind, pythia.process, jet_eta, jet_phi, match_dr)
        if matched is None:
            continue
        truth[n_accepted], truth_id[n_accepted] = matched
        members = [(c.px(), c.py(), c.pz(), c.E()) for c in jet.constituents()]
        constituents[n_accepted] = _pt_ordered(members, m)
        n_constituents[n_accepted] = min(len(members), m)
        jet_p4[n_accepted] = (jet.pt(), jet_eta, jet_phi, jet.m())
        n_accepted += 1
    return ChunkResult(
        label=task.label,
        chunk_index=task.chunk_index,
        constituents=constituents,
        n_constituents=n_constituents,
        jet_p4=jet_p4,
        truth_top_p4=truth if kind.match == "top" else np.zeros_like(truth),
        truth_p4=truth,
        truth_pdg_id=truth_id,
        n_events=n_events,
    )
