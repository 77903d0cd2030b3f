"""kd_trigger: distil a jet tagger into a quantized student and prove its firmware exact."""

__version__ = "0.1.0"
