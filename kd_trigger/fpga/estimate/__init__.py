"""Resource and latency estimates of an hls4ml firmware without the vendor tools (labelled ``"estimate"``).

Modules: :mod:`~kd_trigger.fpga.estimate.model` (the pure core: a list of the layer registry's
:class:`~kd_trigger.layers.spec.LayerSpec` -> :class:`ResourceEstimate`; the method is described there), :mod:`~kd_trigger.fpga.estimate.weights`
(CSD statistics of the weights), :mod:`~kd_trigger.fpga.estimate.coefficients` (the fitted numbers, read
from ``coefficients.json``), :mod:`~kd_trigger.fpga.estimate.adapter` (hls4ml ``ModelGraph`` -> layer
specs -> estimate) and :mod:`~kd_trigger.fpga.estimate.fit` (the offline fit that writes
``coefficients.json``; used by ``benchmarks/estimator_calibration.py`` and the tests only, so it is not
imported here). The runtime names are re-exported here.
"""

from __future__ import annotations

from kd_trigger.fpga.estimate.adapter import (
    VITIS_CLOCK_UNCERTAINTY,
    estimate_model,
    layers_from_hls_model,
)
from kd_trigger.fpga.estimate.coefficients import (
    CALIBRATION,
    COEFFICIENTS,
    FEATURE_GROUP,
    FF_FEATURES,
    LUT_FEATURES,
    METHOD,
    METHOD_NAME,
    Coefficients,
)
from kd_trigger.fpga.estimate.model import (
    DEFAULT_CLOCK_UNCERTAINTY,
    LayerEstimate,
    ResourceEstimate,
    design_features,
    dsp_eligible,
    estimate_layers,
    layer_model,
)
from kd_trigger.fpga.estimate.weights import (
    constant_bits,
    csd_digits,
    weight_profile,
    weight_statistics,
)
from kd_trigger.layers.spec import LayerSpec

__all__ = [
    "CALIBRATION",
    "COEFFICIENTS",
    "DEFAULT_CLOCK_UNCERTAINTY",
    "FEATURE_GROUP",
    "FF_FEATURES",
    "LUT_FEATURES",
    "METHOD",
    "METHOD_NAME",
    "VITIS_CLOCK_UNCERTAINTY",
    "Coefficients",
    "LayerEstimate",
    "LayerSpec",
    "ResourceEstimate",
    "constant_bits",
    "csd_digits",
    "design_features",
    "dsp_eligible",
    "estimate_layers",
    "estimate_model",
    "layer_model",
    "layers_from_hls_model",
    "weight_profile",
    "weight_statistics",
]
