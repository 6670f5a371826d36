"""The engine: sources, E-step kernels, additive statistics, M-step, the one EM loop."""
