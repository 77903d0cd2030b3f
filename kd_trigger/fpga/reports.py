"""Readers for vendor reports made on a machine with Vivado / Vitis: pure text -> dataclass parsers.

Three report kinds are understood, each in the layouts of the tool versions named below (checked against
real reports committed to public repositories, see tests/fixtures/reports/README.md):

- ``*_csynth.xml`` / ``csynth.xml`` written by ``csynth_design`` (Vivado HLS 2019.x-2020.x uses the
  resource tag ``DSP48E``; Vitis HLS 2020.2 onwards ``DSP``): latency, interval, clock, resources and
  the part's available resources. Source label: ``"vendor HLS estimate"``.
- ``*_csynth.rpt`` / ``csynth.rpt``: the same figures as text tables (used when no XML is present).
- Vivado ``report_utilization`` output (hls4ml's ``vivado_synth.rpt``, or ``*_utilization_*.rpt``):
  UltraScale rows ``CLB LUTs`` / ``CLB Registers``, 7-series rows ``Slice LUTs`` / ``Slice Registers``,
  ``Block RAM Tile`` (one tile = 2 BRAM_18K, halves allowed), ``DSPs``, ``URAM``. Source label:
  ``"vendor post-synthesis"``.

HLS estimates and post-synthesis figures are kept apart: the HLS LUT estimate of an hls4ml design can be
about 2x the synthesized count (112,473 vs 60,597 LUT for the same jet tagger, see the fixtures).
Any report that cannot be read becomes a :class:`~kd_trigger.errors.ReportError` naming the file.
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kd_trigger.errors import ReportError
from kd_trigger.fpga import RESOURCE_KEYS, SOURCE_HLS, SOURCE_POST_SYNTH
from kd_trigger.fpga.parts import PARTS, find_part
from kd_trigger.runs import file_problem

log = logging.getLogger(__name__)


@dataclass
class CsynthReport:
    """Figures of one Vivado/Vitis HLS C-synthesis report (vendor HLS estimates)."""

    file: str
    tool: str
    """"Vivado HLS" or "Vitis HLS"."""
    tool_version: str | None
    top: str | None
    part: str | None
    clock_period_ns: float | None
    """The target clock period."""
    estimated_clock_period_ns: float | None
    latency_best_cycles: int | None
    latency_worst_cycles: int | None
    interval_min_cycles: int | None
    interval_max_cycles: int | None
    pipeline_type: str | None
    resources: dict[str, int]
    available: dict[str, int] | None
    source: str = SOURCE_HLS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UtilizationReport:
    """Figures of one Vivado ``report_utilization`` output (after synthesis or implementation)."""

    file: str
    tool_version: str | None
    part: str | None
    design_state: str | None
    resources: dict[str, int | float]
    available: dict[str, int]
    source: str = SOURCE_POST_SYNTH
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# csynth.xml


def _int(text: str | None, what: str, name: str) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if text in ("undef", "-", ""):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ReportError(f"{name}: {what} is {text!r}, not a number") from None
    # float() reads "inf", "nan" and "1e400" (as inf): none is a count of cycles or cells.
    if not math.isfinite(value) or value < 0:
        raise ReportError(f"{name}: {what} is {text!r}, not a finite count")
    return int(value)


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    m = re.search(r"[-+]?\d+(?:\.\d+)?", text)
    return float(m.group(0)) if m else None


_XML_RESOURCE_TAGS = {
    "lut": ("LUT",),
    "ff": ("FF",),
    "dsp": ("DSP", "DSP48E"),
    "bram_18k": ("BRAM_18K",),
    "uram": ("URAM",),
}


def _xml_resources(node: ET.Element, name: str, where: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, tags in _XML_RESOURCE_TAGS.items():
        value = None
        for tag in tags:
            value = _int(node.findtext(tag), f"{where}/{tag}", name)
            if value is not None:
                break
        if value is None and key != "uram":
            raise ReportError(f"{name}: {where} has no {'/'.join(tags)} element; is this a csynth report?")
        out[key] = value or 0  # URAM is absent for parts without UltraRAM (7-series)
    return out


def parse_csynth_xml(text: str, name: str = "csynth.xml") -> CsynthReport:
    """Parse a Vivado HLS / Vitis HLS ``csynth.xml``. ``name`` is used in error messages."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ReportError(f"{name}: not well-formed XML ({err}); the file may be truncated") from None
    perf = root.find("PerformanceEstimates")
    area = root.find("AreaEstimates")
    if perf is None or area is None:
        missing = "PerformanceEstimates" if perf is None else "AreaEstimates"
        raise ReportError(f"{name}: no <{missing}> element; not a Vivado/Vitis HLS csynth.xml")
    lat = perf.find("SummaryOfOverallLatency")
    if lat is None:
        raise ReportError(f"{name}: no <PerformanceEstimates/SummaryOfOverallLatency> element")
    res = area.find("Resources")
    if res is None:
        raise ReportError(f"{name}: no <AreaEstimates/Resources> element")
    avail_node = area.find("AvailableResources")
    tool = "Vivado HLS" if res.find("DSP48E") is not None else "Vitis HLS"
    user = root.find("UserAssignments")
    return CsynthReport(
        file=name,
        tool=tool,
        tool_version=(root.findtext("ReportVersion/Version") or "").strip() or None,
        top=(user.findtext("TopModelName") or "").strip() or None if user is not None else None,
        part=(user.findtext("Part") or "").strip() or None if user is not None else None,
        clock_period_ns=_float(user.findtext("TargetClockPeriod")) if user is not None else None,
        estimated_clock_period_ns=_float(perf.findtext("SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        latency_best_cycles=_int(lat.findtext("Best-caseLatency"), "Best-caseLatency", name),
        latency_worst_cycles=_int(lat.findtext("Worst-caseLatency"), "Worst-caseLatency", name),
        interval_min_cycles=_int(lat.findtext("Interval-min"), "Interval-min", name),
        interval_max_cycles=_int(lat.findtext("Interval-max"), "Interval-max", name),
        pipeline_type=(perf.findtext("PipelineType") or "").strip() or None,
        resources=_xml_resources(res, name, "AreaEstimates/Resources"),
        available=_xml_resources(avail_node, name, "AreaEstimates/AvailableResources")
        if avail_node is not None
        else None,
    )


# ---------------------------------------------------------------------------------------------------
# csynth.rpt


def _cells(line: str) -> list[str]:
    """The cells of a ``|a|b|c|`` table row, stripped."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _section(text: str, title: str) -> str | None:
    """The text of the ``== title`` section of an HLS .rpt, up to the next ``==`` banner."""
    m = re.search(rf"^== {re.escape(title)}\s*$", text, re.MULTILINE)
    if not m:
        return None
    rest = text[m.end() :]
    end = re.search(r"^={10,}\s*\n== ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


_RPT_COLUMNS = {
    "lut": ("LUT",),
    "ff": ("FF",),
    "dsp": ("DSP", "DSP48E", "DSP48"),
    "bram_18k": ("BRAM_18K",),
    "uram": ("URAM",),
}


def _rpt_resource_row(header: list[str], row: list[str], name: str, label: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, names in _RPT_COLUMNS.items():
        idx = next((header.index(n) for n in names if n in header), None)
        if idx is None:
            if key == "uram":
                out[key] = 0
                continue
            raise ReportError(f"{name}: the utilization table has no {names[0]} column")
        cell = row[idx] if idx < len(row) else ""
        value = _int(cell, f"{label} {names[0]}", name)
        out[key] = value or 0
    return out


def parse_csynth_rpt(text: str, name: str = "csynth.rpt") -> CsynthReport:
    """Parse the text report of ``csynth_design`` (Vivado HLS 2019-2020, Vitis HLS 2020.2-2025.x)."""
    banner = re.search(r"^== (Vivado|Vitis) HLS Report for '([^']+)'", text, re.MULTILINE)
    if not banner:
        raise ReportError(f"{name}: no '== Vivado/Vitis HLS Report for' banner; not a csynth .rpt")
    tool = f"{banner.group(1)} HLS"
    version = re.search(r"^\* Version:\s+(\S+)", text, re.MULTILINE)
    device = re.search(r"^\* Target device:\s+(\S+)", text, re.MULTILINE)

    perf = _section(text, "Performance Estimates")
    util = _section(text, "Utilization Estimates")
    if perf is None or util is None:
        missing = "Performance Estimates" if perf is None else "Utilization Estimates"
        raise ReportError(f"{name}: the '{missing}' section is missing; the report may be truncated")

    clock = re.search(r"^\s*\|ap_clk\s*\|([^|]*)\|([^|]*)\|([^|]*)\|", perf, re.MULTILINE)
    if clock is None:
        raise ReportError(f"{name}: no ap_clk row in the timing summary; the report may be truncated")

    lat = re.search(r"\+ Latency:\s*\n\s*\* Summary:\s*\n(.*?)(?:\n\s*\n|\Z)", perf, re.DOTALL)
    if lat is None:
        raise ReportError(f"{name}: no latency summary table; the report may be truncated")
    data_rows = [
        _cells(ln)
        for ln in lat.group(1).splitlines()
        if ln.strip().startswith("|") and re.search(r"\|\s*\d", ln)
    ]
    if not data_rows:
        raise ReportError(f"{name}: the latency summary table has no data row")
    row = data_rows[0]
    # Cells: latency min, max (cycles) [, absolute min, max (with a time unit)], interval min, max, type.
    numbers = [c for c in row if re.fullmatch(r"\d+|undef|-", c)]
    if len(numbers) < 4:
        raise ReportError(f"{name}: cannot read the latency summary row {row}")
    pipeline_type = row[-1] if not re.fullmatch(r"\d+|undef|-", row[-1]) and "ns" not in row[-1] else None

    header: list[str] | None = None
    total: list[str] | None = None
    available: list[str] | None = None
    for ln in util.splitlines():
        if not ln.strip().startswith("|"):
            if header is not None and total is not None and ln.strip() == "" and available is not None:
                break
            continue
        cells = _cells(ln)
        if cells and cells[0] == "Name" and header is None:
            header = cells
        elif header is not None and cells[0] == "Total" and total is None:
            total = cells
        elif header is not None and cells[0] == "Available" and available is None:
            available = cells
    if header is None or total is None:
        raise ReportError(f"{name}: the utilization summary table (Name/Total rows) is missing or cut off")

    return CsynthReport(
        file=name,
        tool=tool,
        tool_version=version.group(1) if version else None,
        top=banner.group(2),
        part=device.group(1) if device else None,
        clock_period_ns=_float(clock.group(1)),
        estimated_clock_period_ns=_float(clock.group(2)),
        latency_best_cycles=_int(numbers[0], "latency min", name),
        latency_worst_cycles=_int(numbers[1], "latency max", name),
        interval_min_cycles=_int(numbers[2], "interval min", name),
        interval_max_cycles=_int(numbers[3], "interval max", name),
        pipeline_type=pipeline_type,
        resources=_rpt_resource_row(header, total, name, "Total"),
        available=_rpt_resource_row(header, available, name, "Available") if available else None,
    )


# ---------------------------------------------------------------------------------------------------
# Vivado report_utilization


_UTIL_ROWS = {
    "lut": ("CLB LUTs", "Slice LUTs"),
    "ff": ("CLB Registers", "Slice Registers"),
    "bram_tile": ("Block RAM Tile",),
    "dsp": ("DSPs",),
    "uram": ("URAM",),
}


def _num(cell: str, name: str, what: str) -> float:
    cleaned = cell.replace(",", "").strip()
    if cleaned.startswith("<"):  # Util% "<0.01"
        cleaned = cleaned[1:]
    try:
        value = float(cleaned)
    except ValueError:
        raise ReportError(f"{name}: {what} is {cell!r}, not a number") from None
    if not math.isfinite(value) or value < 0:
        raise ReportError(f"{name}: {what} is {cell!r}, not a finite count")
    return value


def parse_utilization_rpt(text: str, name: str = "vivado_synth.rpt") -> UtilizationReport:
    """Parse Vivado ``report_utilization`` text (UltraScale(+) and 7-series layouts)."""
    if "Utilization Design Information" not in text and "report_utilization" not in text:
        raise ReportError(f"{name}: not a Vivado report_utilization output")
    version = re.search(r"\|\s*Tool Version\s*:\s*Vivado v\.?(\S+)", text)
    device = re.search(r"\|\s*Device\s*:\s*(\S+)", text)
    state = re.search(r"\|\s*Design State\s*:\s*(.+?)\s*$", text, re.MULTILINE)

    used: dict[str, float] = {}
    avail: dict[str, float] = {}
    used_idx = avail_idx = None
    for ln in text.splitlines():
        s = ln.strip()
        if not s.startswith("|"):
            continue
        cells = _cells(s)
        if cells[0] == "Site Type":
            # Per-SLR tables (no "Used" column) reuse the row names: skip them.
            used_idx = cells.index("Used") if "Used" in cells else None
            avail_idx = cells.index("Available") if "Available" in cells else None
            continue
        if used_idx is None:
            continue
        label = cells[0].rstrip("*").strip()
        for key, labels in _UTIL_ROWS.items():
            if label in labels and key not in used:
                if used_idx >= len(cells) or not cells[used_idx]:
                    raise ReportError(
                        f"{name}: the '{label}' row ends before its Used column; the report may be truncated"
                    )
                used[key] = _num(cells[used_idx], name, f"'{label}' Used")
                if avail_idx is not None and avail_idx < len(cells) and cells[avail_idx]:
                    avail[key] = _num(cells[avail_idx], name, f"'{label}' Available")
    missing = [labels[0] for key, labels in _UTIL_ROWS.items() if key not in used and key != "uram"]
    if missing:
        raise ReportError(
            f"{name}: no {', '.join(repr(m) for m in missing)} row; the report may be truncated"
        )

    def resources(d: dict[str, float]) -> dict[str, Any]:
        bram = d.get("bram_tile", 0.0) * 2  # one 36 Kb tile holds two 18 Kb block RAMs
        return {
            "lut": int(d["lut"]),
            "ff": int(d["ff"]),
            "dsp": int(d["dsp"]),
            "bram_18k": int(bram) if bram == int(bram) else bram,
            "uram": int(d.get("uram", 0)),
        }

    return UtilizationReport(
        file=name,
        tool_version=version.group(1) if version else None,
        part=device.group(1) if device else None,
        design_state=state.group(1) if state else None,
        resources=resources(used),
        available=resources(avail) if {"lut", "ff", "dsp"} <= set(avail) else {},
    )


# ---------------------------------------------------------------------------------------------------
# Finding and combining reports


def detect_format(text: str) -> str:
    """'csynth_xml', 'csynth_rpt', 'utilization' or 'unknown', from the content (not the file name)."""
    head = text.lstrip()[:4000]
    if head.startswith("<") and (
        "<profile" in head or "<PerformanceEstimates" in head or "<ReportVersion" in head
    ):
        return "csynth_xml"
    if re.search(r"^== (Vivado|Vitis) HLS Report for", head, re.MULTILINE):
        return "csynth_rpt"
    if "Utilization Design Information" in head or "report_utilization" in head:
        return "utilization"
    return "unknown"


def _read(path: Path) -> str:
    # Only regular files: a FIFO or a device would block the read (or never end).
    if not path.is_file():
        raise ReportError(f"{path}: not a regular file; pass a report file or a project directory")
    try:
        return path.read_text(errors="replace")
    except OSError as err:
        raise ReportError(f"{path}: cannot be read ({err.strerror})") from None


def parse_report_file(path: Path) -> CsynthReport | UtilizationReport:
    """Parse one report file of any known kind; ReportError for an unknown or broken one."""
    text = _read(path)
    kind = detect_format(text)
    name = str(path)
    if kind == "csynth_xml":
        return parse_csynth_xml(text, name)
    if kind == "csynth_rpt":
        return parse_csynth_rpt(text, name)
    if kind == "utilization":
        return parse_utilization_rpt(text, name)
    if not text.strip():
        raise ReportError(f"{path}: the file is empty")
    raise ReportError(
        f"{path}: unknown report format; expected a Vivado/Vitis HLS csynth .xml/.rpt or a Vivado "
        "report_utilization output (vivado_synth.rpt)"
    )


def _project_name(root: Path) -> str | None:
    """The hls4ml ProjectName from an hls4ml_config.yml under ``root``, if there is one."""
    for cfg in sorted(root.rglob("hls4ml_config.yml"))[:1]:
        try:
            data = yaml.safe_load(cfg.read_text())
        except (OSError, yaml.YAMLError):
            return None
        if isinstance(data, dict) and isinstance(data.get("ProjectName"), str):
            return data["ProjectName"]
    return None


def _one(hits: list[Path], root: Path, what: str) -> Path:
    """The single report of a kind in ``root``; several mean several projects, which are never merged."""
    if len(hits) > 1:
        shown = ", ".join(_display(p, root) for p in hits[:3])
        raise ReportError(
            f"{root}: {len(hits)} {what} reports from different projects ({shown}); "
            "point at one project directory or report file"
        )
    return hits[0]


def _pick_hls_report(root: Path) -> Path | None:
    """The top-level csynth report in an HLS project tree (XML preferred over text)."""
    candidates = sorted(p for p in root.rglob("*csynth.*") if p.suffix in (".xml", ".rpt") and p.is_file())
    if not candidates:
        return None
    top_names = [n for n in (_project_name(root), "myproject") if n]
    for suffix in (".xml", ".rpt"):
        for top in top_names:
            hits = [p for p in candidates if p.name == f"{top}_csynth{suffix}"]
            if hits:
                return _one(hits, root, "C-synthesis")
        # Vitis HLS also writes the top-level summary as plain csynth.xml / csynth.rpt.
        hits = [p for p in candidates if p.name == f"csynth{suffix}"]
        if hits:
            return _one(hits, root, "C-synthesis")
    same_kind = [p for p in candidates if p.suffix == ".xml"] or candidates
    if len(same_kind) == 1:
        return same_kind[0]
    raise ReportError(
        f"{root}: {len(same_kind)} csynth reports and none named after the project "
        f"({', '.join(p.name for p in same_kind[:4])}, ...); pass the top-level report file itself"
    )


def _pick_utilization_report(root: Path) -> Path | None:
    """hls4ml's ``vivado_synth.rpt``, else a ``*util*.rpt`` that holds report_utilization output."""
    named = sorted(p for p in root.rglob("vivado_synth.rpt") if p.is_file())
    if named:
        return _one(named, root, "Vivado synthesis")
    for p in sorted(root.rglob("*util*.rpt")):
        if p.is_file() and detect_format(_read(p)) == "utilization":
            return p
    return None


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def read_report_path(path: Path, part: str | None = None) -> dict[str, Any]:
    """Read an HLS project directory (searched recursively) or one report file; return JSON-able figures.

    Keys: ``latency_cycles`` (worst case), ``latency_ns`` (= cycles x target clock period),
    ``ii_cycles`` (worst-case interval), ``clock_period_ns`` (target), ``part``, ``hls`` (vendor HLS
    estimates, or None), ``synth`` (post-synthesis utilization, or None), ``available`` (device
    resources: from the report, else from :mod:`kd_trigger.fpga.parts` for ``part``), ``source``
    (the most trustworthy kind of figure present), ``files`` and the tool versions.
    ``part`` is used only when no report names the part.
    """
    path = Path(path)
    if part is not None and find_part(part) is None:
        raise ReportError(f"--part: unknown FPGA part {part!r}; known parts: {', '.join(PARTS)}")

    problem = file_problem(path, want="any")
    if problem == "does not exist":
        raise ReportError(f"{path}: no such file or directory")
    if problem is not None:
        raise ReportError(f"{path} {problem}; pass a report file or a project directory")
    if not path.is_dir() and not path.is_file():
        raise ReportError(
            f"{path}: not a regular file or a directory; pass a report file or a project directory"
        )
    hls: CsynthReport | None = None
    util: UtilizationReport | None = None
    root = path if path.is_dir() else path.parent
    if path.is_dir():
        hls_path = _pick_hls_report(path)
        util_path = _pick_utilization_report(path)
        if hls_path is None and util_path is None:
            raise ReportError(
                f"{path}: no report found (looked for *_csynth.xml, *_csynth.rpt, vivado_synth.rpt, "
                "*util*.rpt); run the synthesis with the vendor tools first (make hls SYNTH=1)"
            )
        if hls_path is not None and util_path is not None and util_path.parent not in hls_path.parents:
            # hls4ml writes vivado_synth.rpt at the project root, above the csynth reports.
            raise ReportError(
                f"{path}: {_display(hls_path, path)} and {_display(util_path, path)} belong to different "
                "projects; point at one project directory or report file"
            )
        if hls_path is not None:
            parsed = parse_report_file(hls_path)
            if not isinstance(parsed, CsynthReport):
                raise ReportError(f"{hls_path}: named like a csynth report but holds a utilization report")
            hls = parsed
        if util_path is not None:
            parsed = parse_report_file(util_path)
            if not isinstance(parsed, UtilizationReport):
                raise ReportError(f"{util_path}: expected a Vivado report_utilization output")
            util = parsed
    else:
        parsed = parse_report_file(path)
        if isinstance(parsed, CsynthReport):
            hls = parsed
        else:
            util = parsed

    report_part = (hls.part if hls else None) or (util.part if util else None)
    chosen_part = report_part or part
    if part and report_part and find_part(part) != find_part(report_part):
        log.warning("the report names part %s; ignoring --part %s", report_part, part)

    available: dict[str, Any] | None = None
    available_source = None
    if hls is not None and hls.available:
        available, available_source = dict(hls.available), "HLS report"
    elif util is not None and util.available:
        available, available_source = dict(util.available), "utilization report"
    else:
        known = find_part(chosen_part)
        if known is not None:
            available, available_source = known.to_dict(), "kd_trigger.fpga.parts"
        else:
            log.warning("part %s is not in kd_trigger.fpga.parts: available resources unknown", chosen_part)

    clock = hls.clock_period_ns if hls else None
    latency = hls.latency_worst_cycles if hls else None
    result: dict[str, Any] = {
        "source": SOURCE_POST_SYNTH if util is not None else SOURCE_HLS,
        "latency_cycles": latency,
        "latency_best_cycles": hls.latency_best_cycles if hls else None,
        "latency_worst_cycles": latency,
        "latency_ns": round(latency * clock, 6) if latency is not None and clock is not None else None,
        "latency_source": SOURCE_HLS if latency is not None else None,
        "ii_cycles": hls.interval_max_cycles if hls else None,
        "ii_min_cycles": hls.interval_min_cycles if hls else None,
        "clock_period_ns": clock,
        "estimated_clock_period_ns": hls.estimated_clock_period_ns if hls else None,
        "part": chosen_part,
        "hls": {k: hls.resources[k] for k in RESOURCE_KEYS} if hls else None,
        "hls_source": SOURCE_HLS if hls else None,
        "hls_tool": f"{hls.tool} {hls.tool_version or ''}".strip() if hls else None,
        "hls_file": _display(Path(hls.file), root) if hls else None,
        "synth": None,
        "available": available,
        "available_source": available_source,
    }
    if util is not None:
        result["synth"] = {
            **{k: util.resources[k] for k in RESOURCE_KEYS},
            "source": SOURCE_POST_SYNTH,
            "tool": f"Vivado {util.tool_version or ''}".strip(),
            "design_state": util.design_state,
            "file": _display(Path(util.file), root),
        }
    return result
