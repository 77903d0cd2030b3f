"""hls4ml firmware of the students: derived fixed-point precision, conversion, bit-exact C simulation.

Public entry points: :mod:`kd_trigger.hls.hls4ml_stage` (a run's distilled students),
:func:`kd_trigger.hls.saved_model.convert_saved_model` and :func:`~kd_trigger.hls.saved_model.rtl_saved_model`
(any saved QKeras model); hls4ml firmware is built by :mod:`kd_trigger.hls.build`, the RTL flow by
:mod:`kd_trigger.rtl.student`.
"""
