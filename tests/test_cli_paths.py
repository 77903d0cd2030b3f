"""CLI paths no other test reaches: SIGTERM, the ``--reuse``/``--precision`` parse errors, a missing tool."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import kd_trigger.cli as cli
from kd_trigger.cli import main
from kd_trigger.errors import ToolMissingError


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"kd-trigger {command}: "), err
    return lines[0]


def test_sigterm_unwinds_like_ctrl_c_and_exits_130(monkeypatch, capsys) -> None:
    """A batch system's kill (SIGTERM) during a command: exit 130 with one line, and the previous SIGTERM
    handler is back afterwards."""
    unwound = []

    def long_command(args) -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler interrupts this
            return 0
        finally:
            unwound.append(args.command)  # context managers (staging, locks, pools) run on the way out

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "run", long_command)
    t0 = time.monotonic()
    assert main(["status"]) == 130
    assert time.monotonic() - t0 < 10 and unwound == ["status"]
    line = _one_line(capsys, "status")
    assert "interrupted; nothing of the unfinished stage was kept" in line
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reuse", "abc"], "--reuse 'abc': give a positive integer R, or LAYER=R"),
        (["--reuse", "head=x"], "--reuse 'head=x': give a positive integer R, or LAYER=R"),
        (["--reuse", "head=-2"], "--reuse 'head=-2': give a positive integer R, or LAYER=R"),
        (["--reuse", "2", "--reuse", "head="], "--reuse 'head=': give a positive integer R, or LAYER=R"),
        (["--precision", "head"], "--precision 'head': write LAYER=TYPE"),
        (["--precision", "=ap_fixed<8,3>"], "--precision '=ap_fixed<8,3>': write LAYER=TYPE"),
        (["--precision", "head=fixed8"], "hls.layers.head.precision"),
        (["--reuse", "0"], "hls.reuse_factor"),
    ],
)
def test_reuse_and_precision_parse_errors_are_one_line(args, message, tmp_path: Path, capsys) -> None:
    model, out = tmp_path / "m.h5", tmp_path / "fw"
    model.write_bytes(b"")
    capsys.readouterr()
    assert main(["hls", "--model", str(model), "--out", str(out), *args]) == 2
    line = _one_line(capsys, "hls")
    assert message in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.h5"]


def test_a_missing_tool_is_named_with_how_to_get_it(monkeypatch) -> None:
    """PATH emptied: the RTL flow's tool check names the missing program and the package that has it."""
    from kd_trigger.rtl import tools

    monkeypatch.setenv("PATH", "")
    tools.find_verilator.cache_clear()
    try:
        with pytest.raises(ToolMissingError, match=r"perl is not on PATH: .*\(apt install perl\)") as err:
            tools.find_verilator()
        assert err.value.exit_code == 2
    finally:
        tools.find_verilator.cache_clear()
