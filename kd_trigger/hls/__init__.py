"""hls4ml firmware of the students: derived fixed-point precision, conversion, bit-exact C simulation.

Public entry points: :func:`kd_trigger.hls.pipeline.run_hls_stage` (a run's distilled students) and
:func:`kd_trigger.hls.pipeline.convert_saved_model` (any saved QKeras model).
"""
