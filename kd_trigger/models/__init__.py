"""Network definitions: the Lorentz-equivariant teacher and the quantized students."""
