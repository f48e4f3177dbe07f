"""gpuspike: run and train spiking neural networks on the GPU from Brian2 and PyNN.

The public surface is small: :func:`gpuspike.simulate` style use goes through
:class:`gpuspike.engine.Simulation` on a :class:`gpuspike.bridge.ir.NetworkIR`.
"""

__version__ = "0.1.0"
