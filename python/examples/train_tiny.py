#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Train a tiny numpy model (logistic regression) from a vstash dataset, checkpointing every epoch.

    train_tiny.py [--profile NAME] [--config FILE] [--dataset NAME] [--epochs N] [--resume]

Generates a separable 2-class dataset when the dataset does not exist yet, then runs the
training loop over vstash's DataLoader and saves MODEL@EPOCH with the weights, the optimizer
state and the loss after each epoch. --resume continues from MODEL@latest.
"""
import argparse

import numpy as np

import vstash


def make_data(store, dataset, rows=2000, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim)
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    y = (x @ w > 0).astype(np.int64)
    store.store_training_data(dataset, x, y, {"generator": "train_tiny", "seed": seed})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=None)
    ap.add_argument("--config", default="")
    ap.add_argument("--dataset", default="tiny-train")
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.5)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()

    store = vstash.open(args.profile, config_file=args.config)
    if not any(d["name"] == args.dataset for d in store.get_statistics()["datasets"]):
        make_data(store, args.dataset)
    loader = store.create_data_loader(args.dataset, batch_size=args.batch_size, shuffle=True, num_workers=2, seed=1)
    dim = next(iter(loader))[0].shape[1]
    w, b, velocity, start = np.zeros(dim), 0.0, np.zeros(dim + 1), 0
    if args.resume:
        cp = store.load_checkpoint(f"{args.model}@latest")
        w, b = cp["parameters"][:-1], float(cp["parameters"][-1])
        velocity, start = cp["arrays"]["optimizer/velocity"], cp["epoch"] + 1

    for epoch in range(start, start + args.epochs):
        loader.set_epoch(epoch)
        losses = []
        for x, y in loader:
            p = 1 / (1 + np.exp(-(x @ w + b)))
            losses.append(float(np.mean(-y * np.log(p + 1e-9) - (1 - y) * np.log(1 - p + 1e-9))))
            grad = np.append(x.T @ (p - y), np.sum(p - y)) / len(y)
            velocity = 0.9 * velocity + grad
            w, b = w - args.lr * velocity[:-1], b - args.lr * velocity[-1]
        loss = float(np.mean(losses))
        path = store.save_checkpoint(args.model, epoch, {"parameters": np.append(w, b),
                                                         "optimizer/velocity": velocity},
                                     {"loss": loss}, {"lr": args.lr, "batch_size": args.batch_size},
                                     overwrite=True)
        print(f"epoch {epoch}: loss {loss:.4f} -> {path}", flush=True)


if __name__ == "__main__":
    main()
