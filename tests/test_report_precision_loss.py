"""The report's precision-loss section (issue 22): a sentence with the output effect and a table of only
the layers with a loss; one line when there is none, one line when it was not measured."""

from __future__ import annotations

from kd_trigger.report.html import Paragraph, Table, render_html, render_markdown
from kd_trigger.report.precision_loss import HEADING, precision_loss_blocks

# precision_loss of hls_report.json from `kd-trigger hls --model` on a float MLP with tanh and sigmoid
# between its layers (tests/test_intake_default_design.py::float_lookup_mlp, hls4ml's default design),
# the run of this test file's commit; numbers shortened where the text rounds them anyway.
LOSS = {
    "design": "hls4ml default (config_from_keras_model(model, granularity='name'))",
    "reference": "the model in float64 (its own quantizers, float layers unquantized)",
    "compared_layer": None,
    "n_samples": 10000,
    "max_abs_diff": 0.8964343931055524,
    "mean_abs_diff": 0.08394716772500133,
    "decision_changed_fraction": 0.0,
    "layers": {
        "input_1": {
            "result_type": "ap_fixed<16,6>",
            "n_values": 100000,
            "max_abs_diff": 0.0,
            "mean_abs_diff": 0.0,
            "overflow_count": 0,
        },
        "fc1": {
            "result_type": "ap_fixed<37,17>",
            "n_values": 160000,
            "max_abs_diff": 64.19364148919703,
            "mean_abs_diff": 6.168586405563923,
            "overflow_count": 15312,
        },
        "fc1_tanh": {
            "result_type": "ap_fixed<16,6>",
            "n_values": 160000,
            "max_abs_diff": 2.0,
            "mean_abs_diff": 0.19155832091532451,
            "overflow_count": 0,
        },
        "output": {
            "result_type": "ap_fixed<36,16>",
            "n_values": 30000,
            "max_abs_diff": 0.8964343931055524,
            "mean_abs_diff": 0.08394716772500133,
            "overflow_count": 0,
        },
    },
    "first_overflow_layer": "fc1",
}


def test_a_lossy_design_gets_a_sentence_and_a_table_of_its_lossy_layers() -> None:
    blocks = precision_loss_blocks(LOSS)
    assert isinstance(blocks[1], Paragraph) and blocks[1].tone == "warn"
    assert blocks[1].text == (
        "The design (hls4ml default (config_from_keras_model(model, granularity='name'))) differs from the "
        "model's own arithmetic on the 10,000 simulated inputs: values first overflow a configured type at "
        "`fc1` (wrapped or saturated; hls4ml does not warn). At the output the largest error is 0.8964 (mean "
        "0.08395), and the decision (argmax) agrees on 100.00% of the samples."
    )
    table = blocks[2]
    assert isinstance(table, Table)
    assert table.rows == (
        ("fc1", "ap_fixed<37,17>", "15,312 of 160,000", "64.19", "6.169"),
        ("fc1_tanh", "ap_fixed<16,6>", "0 of 160,000", "2", "0.1916"),
        ("output", "ap_fixed<36,16>", "0 of 30,000", "0.8964", "0.08395"),
    )
    assert table.row_tones == ("fail", "warn", "warn")
    md = render_markdown(blocks)
    assert f"### {HEADING}" in md and "| input_1 |" not in md
    assert "| fc1 | ap_fixed<37,17> | 15,312 of 160,000 | 64.19 | 6.169 |" in md
    html = render_html(blocks, "t")
    assert "15,312 of 160,000" in html and "input_1" not in html


def test_no_loss_is_one_line() -> None:
    exact = {
        **LOSS,
        "max_abs_diff": 0.0,
        "first_overflow_layer": None,
        "layers": {"fc1": {**LOSS["layers"]["input_1"]}},  # type: ignore[index]
    }
    blocks = precision_loss_blocks(exact)
    assert len(blocks) == 2 and blocks[1] == Paragraph(
        "No precision loss: on the 10,000 simulated inputs every layer equals the model's own arithmetic.",
        "pass",
    )


def test_rounding_without_overflow_and_a_changed_decision() -> None:
    rounding = {
        **LOSS,
        "first_overflow_layer": None,
        "compared_layer": "output",
        "decision_changed_fraction": 0.0123,
    }
    text = precision_loss_blocks(rounding)[1].text  # type: ignore[union-attr]
    assert "no value overflows a configured type (the loss is rounding). At `output` the largest" in text
    assert text.endswith("the decision (argmax) agrees on 98.77% of the samples.")


def test_not_measured_is_one_line() -> None:
    blocks = precision_loss_blocks(None)
    assert len(blocks) == 2 and blocks[1].text.startswith(
        "Not measured for this design: its types are derived"
    )  # type: ignore[union-attr]
