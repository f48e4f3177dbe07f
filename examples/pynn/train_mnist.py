"""Train a 784-128-10 spiking network on latency-coded MNIST from PyNN, then simulate it.

    python examples/pynn/train_mnist.py              # 10 epochs on MNIST-5k (4000/1000)
    python examples/pynn/train_mnist.py --quick      # 1 epoch on 1000 digits: a smoke run
    python examples/pynn/train_mnist.py --epochs 30 --engine cupy

The network is written in PyNN: a SpikeSourceArray input (one neuron per pixel, mlGeNN's
latency code: bright pixels fire first, between 2 and 18 ms), 128 IF_curr_exp neurons and 10
leaky-integrator readouts. EventPropTrainer trains the weights with exact gradients (EventProp)
on the gpuspike engine and writes them back into the Projections; the script then runs one
test digit with the ordinary ``sim.run`` and reads the class off the readout membranes.

Parameters are mlGeNN's MNIST example in PyNN units: tau_m = 20 ms, tau_syn = 5 ms, no
refractory period, threshold 20 mV above rest with cm = 1 nF (so 1 nA of weight moves the
membrane 20 mV, one threshold, as mlGeNN's weight 1 does) and readouts with cm = 20 nF
(gain tau_m/cm = 1 mV per nA, mlGeNN's readout scale). Each layer is a pair of projections,
excitatory (weights >= 0) and inhibitory (weights <= 0), as PyNN wants the signs; they train
as one signed weight matrix.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyNN.gpuspike as sim
from pyNN.gpuspike.training import EventPropTrainer, LeakyIntegratorReadout

from gpuspike.datasets.mnist import load_mnist_dataset

DT, DURATION = 1.0, 20.0  # ms
HIDDEN = dict(
    tau_m=20.0,
    cm=1.0,
    v_rest=-65.0,
    v_thresh=-45.0,
    v_reset=-65.0,
    tau_refrac=0.0,
    tau_syn_E=5.0,
    tau_syn_I=5.0,
    i_offset=0.0,
)
READOUT = dict(tau_m=20.0, cm=20.0, v_rest=-65.0, tau_syn_E=5.0, tau_syn_I=5.0)
#: mlGeNN's initial weights, N(mean, std) in nA
INIT = {"input->hidden": (0.078, 0.045), "hidden->output": (0.2, 0.37)}


def build_network(n_in: int, n_hidden: int, n_out: int, seed: int):
    """The PyNN network; returns the three populations and the four projections."""
    sim.setup(timestep=DT, min_delay=DT)
    inp = sim.Population(n_in, sim.SpikeSourceArray(spike_times=[]), label="input")
    hid = sim.Population(n_hidden, sim.IF_curr_exp(**HIDDEN), label="hidden")
    out = sim.Population(n_out, LeakyIntegratorReadout(**READOUT), label="output")
    hid.initialize(v=HIDDEN["v_rest"])
    out.initialize(v=READOUT["v_rest"])
    rng = np.random.default_rng(seed)
    projections = []
    for pre, post in ((inp, hid), (hid, out)):
        mean, std = INIT[f"{pre.label}->{post.label}"]
        w = rng.normal(mean, std, (pre.size, post.size))
        for receptor, part in (
            ("excitatory", np.maximum(w, 0.0)),
            ("inhibitory", np.minimum(w, 0.0)),
        ):
            projections.append(
                sim.Projection(
                    pre,
                    post,
                    sim.AllToAllConnector(),
                    sim.StaticSynapse(weight=part, delay=DT),
                    receptor_type=receptor,
                )
            )
    return (inp, hid, out), projections


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument(
        "--quick", action="store_true", help="1 epoch on 1000 training digits, 200 test digits"
    )
    ap.add_argument("--engine", default="auto", choices=("auto", "numpy", "cpp", "cupy"))
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--lr-decay", type=float, default=0.95)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--digit", type=int, default=0, help="test digit to simulate with sim.run")
    ap.add_argument("--checkpoint", help="folder for a checkpoint after every epoch")
    args = ap.parse_args()

    train, test = load_mnist_dataset("mnist5k", seed=args.seed)
    epochs = args.epochs
    if args.quick:
        rng = np.random.default_rng(args.seed)
        train = train.subset(np.sort(rng.choice(len(train), 1000, replace=False)))
        test = test.subset(np.arange(0, len(test), 5))
        epochs = 1
    print(f"latency MNIST: {len(train)} training and {len(test)} test digits")

    (inp, hid, out), projections = build_network(train.n_channels, args.hidden, 10, args.seed)
    trainer = EventPropTrainer(
        input=inp,
        output=out,
        projections=projections,
        loss="avg_ce",
        duration=DURATION,
        engine=args.engine,
        max_spikes=int(DURATION / DT),
    )
    t0 = time.perf_counter()
    result = trainer.fit(
        train,
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        val=test,
        checkpoint_dir=args.checkpoint,
        resume=args.checkpoint is not None,
    )
    for rec in result.history:
        print(
            f"epoch {rec['epoch'] + 1}: train acc {rec['train_acc']:.3f}, "
            f"test acc {rec['val_acc']:.3f}, "
            f"{rec['spikes_per_neuron']['hidden']:.2f} hidden spikes/neuron"
        )
    print(
        f"trained in {time.perf_counter() - t0:.1f} s; test accuracy (engine) "
        f"{trainer.evaluate(test):.3f}"
    )

    # the trained weights are in the Projections now: simulate one test digit with sim.run
    w = projections[0].get("weight", format="array") + projections[1].get("weight", format="array")
    print(
        f"input->hidden weights in PyNN after training: mean {w.mean():.4f} nA, "
        f"range {w.min():.3f} .. {w.max():.3f} nA"
    )
    k = args.digit
    trainer.load_example(test, k)
    hid.record("spikes")
    out.record("v")
    sim.run(DURATION)
    v = np.asarray(out.get_data().segments[0].analogsignals[0])  # (21, 10) mV, t = 0..20 ms
    n_spikes = sum(len(s) for s in hid.get_data().segments[0].spiketrains)
    logits = v[1:].mean(axis=0)  # avg_ce's class scores: mean readout membrane
    predicted = int(np.argmax(logits))
    engine = trainer.trace(test, k)
    print(
        f"sim.run of test digit {k} (label {int(test.labels[k])}): predicted class "
        f"{predicted}; {n_spikes} hidden spikes; engine predicts {engine.prediction}, "
        f"max |v_sim.run - v_engine| = {np.abs(v - engine.v).max():.2e} mV"
    )
    sim.end()


if __name__ == "__main__":
    main()
