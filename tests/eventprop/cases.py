"""Tiny seeded networks shared by the tests (3 inputs, 4 hidden, 2 outputs, T = 30 ms)."""

from __future__ import annotations

import numpy as np

from .reference import Network, NeuronParams, layered_network

T = 30.0


def tiny_case(seed: int, *, recurrent: bool = False, delays: bool = False,
              output_spiking: bool = False, out_scale: float = 1.0,
              params: NeuronParams = NeuronParams(), n_in: int = 3,
              n_hid: int = 4) -> tuple[Network, list[np.ndarray]]:
    """A seeded network and its input spike trains (4 spikes per channel in [0, 20) ms)."""
    rng = np.random.default_rng(seed)
    inputs = [np.sort(rng.uniform(0.0, 20.0, 4)) for _ in range(n_in)]
    w_in = rng.normal(2.5, 1.5, (n_hid, n_in))
    w_out = rng.normal(3.0, 1.5, (2, n_hid)) * out_scale
    w_rec = rng.normal(0.0, 1.0, (n_hid, n_hid))
    d_in = rng.uniform(0.5, 5.0, (n_hid, n_in))
    d_out = rng.uniform(0.5, 5.0, (2, n_hid))
    d_rec = rng.uniform(0.5, 5.0, (n_hid, n_hid))
    net = layered_network(w_in, w_out, w_rec if recurrent else None,
                          d_in=d_in if delays else None,
                          d_rec=d_rec if delays and recurrent else None,
                          d_out=d_out if delays else None,
                          output_spiking=output_spiking, params=params)
    return net, inputs
