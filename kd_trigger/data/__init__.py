"""Jet data: generation (Pythia 8 + FastJet), readers, per-particle features and Lorentz boosts.

Light imports only here: Pythia, FastJet and pandas load inside the functions that need them.
"""

from kd_trigger.data.dataset import FORMAT_NAME, FORMAT_VERSION, SPLIT_CODES, JetDataset, assign_split

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SPLIT_CODES", "JetDataset", "assign_split"]
