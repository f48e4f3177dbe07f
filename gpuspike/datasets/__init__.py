"""Spike datasets: SHD files, audio -> spikes encoding, spoken digits, augmentation, baseline.

See :mod:`gpuspike.datasets.shd` (SHD h5 layout), :mod:`gpuspike.datasets.audio` (cochlea-like
encoder), :mod:`gpuspike.datasets.fsdd` (Free Spoken Digit Dataset and its splits),
:mod:`gpuspike.datasets.augment` (event augmentations) and
:mod:`gpuspike.datasets.baseline` (closed-form ridge classifier).
"""
