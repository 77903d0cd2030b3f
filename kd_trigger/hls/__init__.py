"""hls4ml firmware of the students: derived fixed-point precision, conversion, bit-exact C simulation.

Public entry points: :mod:`kd_trigger.hls.hls4ml_stage` (a run's distilled students),
:func:`kd_trigger.hls.build.convert_and_simulate` (one model) and
:func:`kd_trigger.hls.pipeline.convert_saved_model` (any saved QKeras model).
"""
