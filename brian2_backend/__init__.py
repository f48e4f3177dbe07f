"""gpuspike.brian2_backend: the Brian2 device ``set_device('gpuspike')``.

``import gpuspike`` registers the device in ``brian2.devices.device.all_devices`` (lazily:
when Brian2 is imported, not before). Modules: :mod:`.device` (the device and its
``network_run``), :mod:`.objects` (Brian2 objects -> NetworkIR: the walk over the
schedule), with :mod:`.neurons`, :mod:`.synaptic`, :mod:`.monitors` (one kind of object
each), :mod:`.schedule` (clocks and slots), :mod:`.binding` and :mod:`.fingerprint`;
:mod:`.translate` (abstract code -> IR statements), :mod:`.names` (Brian2 names -> IR
names, linked variables), :mod:`.results` (state and recordings back to Brian2),
:mod:`.suite` (Brian2's own test suite on the device).
"""

from __future__ import annotations

DEVICE_NAME = "gpuspike"


def register() -> None:
    """Create the device and add it to Brian2's ``all_devices`` (idempotent)."""
    from brian2.devices.device import all_devices

    if DEVICE_NAME not in all_devices:
        import gc

        from .device import GpuspikeDevice

        all_devices[DEVICE_NAME] = GpuspikeDevice()
        # Brian2, SymPy and the engine are loaded now and stay for the process: take their
        # objects out of the cyclic collector's scans (gc.freeze), which otherwise walk
        # them at every full collection (Brian2 collects at each run(); a script building
        # networks in a loop spent ~0.1 s per network there). Only objects alive now are
        # frozen; the user's networks come later and are collected as usual.
        gc.freeze()
