"""pyNN.gpuspike: the PyNN backend (installed as ``pyNN.gpuspike``).

The backend is the work of issue 4; importing it before then says so.
"""

raise ImportError(
    "pyNN.gpuspike is not available yet: the PyNN backend is still being built "
    "(gpuspike issue 4). Use pyNN.nest or pyNN.brian2 meanwhile."
)
