"""gpuspike.brian2_backend: the Brian2 device ``set_device('gpuspike')``.

The device itself is the work of issue 3 (Brian2 device); nothing is registered yet.
"""
