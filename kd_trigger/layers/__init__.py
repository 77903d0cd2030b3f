"""One handler per layer kind, asked by every walk over a model.

Modules: :mod:`.spec` (the one plain-data :class:`LayerSpec`, :class:`LayerPrecision`, :class:`Intake`),
:mod:`.base` (the handler base class and the walks' state), :mod:`.step` (the RTL program's instruction),
:mod:`.keras` (reading QKeras quantizers), one module per kind (:mod:`.structure`, :mod:`.activation`,
:mod:`.dense`, :mod:`.pooling`, :mod:`.batchnorm`) and :mod:`.registry` (lookup by class name).
"""
