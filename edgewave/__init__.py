"""edgewave: causal, dilated 1-D conv nets from training to bit-exact streaming C."""

__version__ = "0.1.0"
