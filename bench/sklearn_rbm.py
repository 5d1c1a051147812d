#!/usr/bin/env python3
"""scikit-learn's BernoulliRBM (PCD-1) on MNIST for side-by-side comparison with `ebm rbm train`.

Same data (stochastically binarised MNIST train images), batch size and hidden units; prints
each epoch's wall time and scikit-learn's stochastic pseudo-likelihood on the first 1000 rows.

    pip install scikit-learn numpy
    python3 bench/sklearn_rbm.py --data /work/shared/data/mnist --hidden 500 --batch 100 --epochs 1 --limit 10000
    ebm rbm train --data /work/shared/data/mnist --hidden 500 --pcd 1 --batch 100 --epochs 1 --limit 10000 \
        --lr 0.05 --momentum 0 --backend cpu --run-dir runs/pcd1
"""
import argparse, gzip, struct, time
import numpy as np
from sklearn.neural_network import BernoulliRBM


def read_idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="/work/shared/data/mnist")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    a = p.parse_args()
    x = read_idx(f"{a.data}/train-images-idx3-ubyte.gz").reshape(-1, 784)[: a.limit] / 255.0
    rng = np.random.default_rng(0)
    x = (rng.random(x.shape) < x).astype(a.dtype)
    rbm = BernoulliRBM(n_components=a.hidden, batch_size=a.batch, learning_rate=a.lr, n_iter=1, random_state=0)
    for epoch in range(a.epochs):
        t = time.perf_counter()
        # fit() runs epoch 1 (shuffled minibatches); later epochs go batch by batch.
        if epoch == 0:
            rbm.fit(x)
        else:
            for start in range(0, len(x), a.batch):
                rbm.partial_fit(x[start:start + a.batch])
        dt = time.perf_counter() - t
        pl = rbm.score_samples(x[:1000]).mean()
        print(f"epoch {epoch + 1}: {dt:.2f}s ({len(x)} rows, {a.hidden} hidden, batch {a.batch}, {a.dtype}), pseudo-likelihood {pl:.3f}")


if __name__ == "__main__":
    main()
