"""Spike datasets: SHD files, audio -> spikes encoding, spoken digits, MNIST, augmentation,
baseline.

See :mod:`gpuspike.datasets.events` (:class:`~gpuspike.datasets.events.SpikeDataset`, the
in-memory form), :mod:`gpuspike.datasets.shd` (SHD h5 layout),
:mod:`gpuspike.datasets.audio` (cochlea-like encoder), :mod:`gpuspike.datasets.encode`
(parallel, cached encoding of WAV folders), :mod:`gpuspike.datasets.fsdd` (Free Spoken Digit
Dataset and its splits), :mod:`gpuspike.datasets.mnist` (MNIST images as latency-coded
spikes), :mod:`gpuspike.datasets.augment` (event augmentations) and
:mod:`gpuspike.datasets.baseline` (closed-form ridge classifier).
"""
