"""hls4ml firmware of the students: derived fixed-point precision, conversion, bit-exact C simulation.

Public entry points: :func:`kd_trigger.hls.pipeline.hls_stage` (a run's distilled students),
:func:`kd_trigger.hls.saved_model.convert_saved_model` and :func:`~kd_trigger.hls.saved_model.rtl_saved_model`
(any saved QKeras model); both build with :mod:`kd_trigger.hls.build`.
"""
