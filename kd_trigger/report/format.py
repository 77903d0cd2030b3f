"""Number and label formatting of the review report: one place decides how a figure is printed."""

from __future__ import annotations

import math
from typing import Any

from kd_trigger.fpga import SOURCE_ESTIMATE
from kd_trigger.report.html import Tone

NA = "n/a"


def is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def fmt_int(value: Any) -> str:
    """Counts (LUT, cycles) with thousands separators; non-integral values keep one decimal."""
    if not is_num(value) or not math.isfinite(value):
        return NA if not is_num(value) else str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def fmt_fixed(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if is_num(value) and math.isfinite(value) else NA


def _rej_digits(value: float) -> int:
    if value >= 100:
        return 0
    return 1 if value >= 10 else 2


def fmt_rejection(value: Any, err: Any = None) -> str:
    """1/eps_B with a precision that follows its size; the error gets the same number of decimals."""
    if not is_num(value):
        return NA
    if math.isinf(value):
        return "inf (no background passes)"
    digits = _rej_digits(value)
    text = f"{value:.{digits}f}"
    if is_num(err) and math.isfinite(err):
        text += f" ± {err:.{digits}f}"
    return text


def fmt_with_err(value: Any, err: Any, digits: int = 4) -> str:
    text = fmt_fixed(value, digits)
    if text != NA and is_num(err) and math.isfinite(err):
        text += f" ± {err:.{digits}f}"
    return text


def fmt_pct(used: Any, available: Any) -> str:
    """Utilization in % of the part: 17,280 of 1,728,000 LUT is '1.0%'."""
    if not (is_num(used) and is_num(available)) or available <= 0:
        return NA
    pct = 100.0 * used / available
    if pct == 0:
        return "0.0%"
    if pct >= 1:
        return f"{pct:.1f}%"
    return f"{pct:.2f}%" if pct >= 0.01 else "<0.01%"


def fmt_value(value: Any) -> str:
    """A budget figure or limit: integers with separators, floats with 4 significant digits."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_num(value):
        if float(value).is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def status_text(value: Any) -> str:
    if isinstance(value, bool):
        return "PASS" if value else "FAIL"
    return str(value).upper() if value is not None else NA


def tone_of(status: str) -> Tone:
    if status == "PASS":
        return "pass"
    if status == "FAIL":
        return "fail"
    return "warn" if status not in (NA, "") else "plain"


def source_label(source: Any, method: Any = None) -> str:
    """How a figure's origin is printed. Our own estimate says 'estimate (method)'; vendor labels
    ("vendor HLS estimate", "vendor post-synthesis") are printed as the fpga stage wrote them."""
    src = str(source) if source else NA
    if src.strip().lower() == SOURCE_ESTIMATE:
        return f"{SOURCE_ESTIMATE} ({method})" if method else SOURCE_ESTIMATE
    return src
