"""One handler per layer kind, asked by every walk over a model (both firmware flows and the estimate).

Modules: :mod:`.spec` (the one plain-data :class:`LayerSpec`, :class:`LayerPrecision`, :class:`Intake`),
:mod:`.base` (the handler base class and the walks' state), :mod:`.step` (the RTL program's instruction),
:mod:`.keras` (reading QKeras quantizers), one module per kind (:mod:`.structure`, :mod:`.activation`,
:mod:`.dense`, :mod:`.pooling`, :mod:`.batchnorm`), :mod:`.registry` (lookup by Keras or hls4ml class
name), and the walks over a whole model shared by both flows: :mod:`.model` (description, derived
precision, firmware weights) and :mod:`.reference` (the float64 reference twin).

Adding a layer kind: one handler module, listed in :data:`kd_trigger.layers.registry.HANDLERS`, and a
test class on ``tests/layer_base.py``'s ``LayerTestBase``.
"""
