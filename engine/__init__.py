"""gpuspike.engine: lowering, CUDA and NumPy code generation, memory and runtime."""
