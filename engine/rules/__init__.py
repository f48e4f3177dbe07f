"""Training rules beside EventProp: surrogate-gradient BPTT and e-prop, as kernel IR.

Every rule trains the same :class:`~gpuspike.bridge.training_ir.EventPropIR` network with the
same forward pass (:mod:`gpuspike.engine.eventprop.kernels`) on every engine; they differ in
how the gradient is taken (:mod:`.kernels`). :func:`make_network` picks the model class.
"""
