#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# The training workflow end to end through the CLI (issue 7): sharded streaming by several
# worker processes, identical batches whatever --workers is, concurrent checkpoint saves,
# retention, a save killed mid-way, and progress tracking.
#
# Backend: VSTASH_TRAINING_CONFIG (a profile file) + VSTASH_TRAINING_PROFILE (a profile in
# it); with neither set, a fresh local store in a temporary directory. Dataset, model and run
# names are unique per run so several runs can share one server.
# Needs VSTASH_BIN (the built vstash). Run with Debian's /usr/bin/python3 (numpy).
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import numpy as np

BIN = os.environ.get("VSTASH_BIN", "vstash")
ROWS = 103
DIM = 8
M64 = (1 << 64) - 1


# ---- the epoch order, re-implemented from the recipe in workflows/training/sharding.hpp --------
def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def epoch_order(n, seed, epoch):
    state, keys = (seed ^ _mix(epoch)) & M64, []
    for _ in range(4):
        state = (state + 0x9E3779B97F4A7C15) & M64
        keys.append(_mix(state))
    h = 1
    while (1 << (2 * h)) < n:
        h += 1
    mask = (1 << h) - 1

    def permute(i):
        x = i
        while True:
            left, right = x >> h, x & mask
            for k in keys:
                left, right = right, left ^ (_mix(right ^ k) & mask)
            x = (left << h) | right
            if x < n:
                return x
    return [permute(i) for i in range(n)]


# ---- a backend to run against ---------------------------------------------------------------
class Store:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="vstash-training-")
        config = os.environ.get("VSTASH_TRAINING_CONFIG", "")
        profile = os.environ.get("VSTASH_TRAINING_PROFILE", "")
        if bool(config) != bool(profile):
            raise SystemExit("set both VSTASH_TRAINING_CONFIG and VSTASH_TRAINING_PROFILE, or neither")
        if not config:
            config = os.path.join(self.tmp, "vstash.yaml")
            with open(config, "w") as f:
                f.write("default: local\nprofiles:\n  local:\n    type: local\n"
                        f"    path: {os.path.join(self.tmp, 'store.db')}\n")
            profile = "local"
        self.base = [BIN, "--config", config, "--profile", profile, "--no-progress"]
        self.suffix = f"{os.getpid()}-{int(time.time() * 1000) % 10**8}"
        self.dataset = f"train-{self.suffix}"
        self.models = []

    def cmd(self, *args, dataset=True):
        return self.base + (["--dataset", self.dataset] if dataset else []) + [str(a) for a in args]

    def run(self, *args, check=True, dataset=True):
        p = subprocess.run(self.cmd(*args, dataset=dataset), capture_output=True, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, args))}: exit {p.returncode}: {p.stderr.decode().strip()}")
        return p

    def json(self, *args, dataset=True):
        return json.loads(self.run(*args, "--json", dataset=dataset).stdout)

    def model(self, name):
        m = f"{name}-{self.suffix}"
        self.models.append(m)
        return m

    def path(self, name):
        return os.path.join(self.tmp, name)

    def cleanup(self):
        self.run("delete", "--dataset-all", "--yes", check=False)
        for m in self.models:
            listed = self.run("checkpoint", "list", "--model", m, "--json", check=False, dataset=False)
            if listed.returncode == 0:
                for c in json.loads(listed.stdout)["checkpoints"]:
                    self.run("delete", "--checkpoint", c["path"], "--yes", check=False, dataset=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


STORE = None


def setUpModule():
    global STORE
    STORE = Store()
    # Row i: first value i, label i, so every array read back names its dataset position.
    data = np.random.default_rng(5).standard_normal((ROWS, DIM)).astype(np.float32)
    data[:, 0] = np.arange(ROWS)
    np.save(STORE.path("data.npy"), data)
    np.save(STORE.path("labels.npy"), np.arange(ROWS, dtype=np.int64))
    STORE.run("ingest", STORE.path("data.npy"), "--labels", STORE.path("labels.npy"), "--metric", "euclidean")


def tearDownModule():
    if STORE is not None:
        STORE.cleanup()


def read_npy_stream(raw):
    """Batches of an NPY stream of (data, labels) pairs."""
    f = io.BytesIO(raw)
    out = []
    while f.tell() < len(raw):
        data = np.lib.format.read_array(f)
        labels = np.lib.format.read_array(f)
        out.append((data, labels))
    return out


def stream_args(epoch, rank, world, workers=2, extra=()):
    return ["batch", "--stream", "--size", 10, "--shuffle", "--seed", 7, "--epoch", epoch, "--rank", rank,
            "--world-size", world, "--workers", workers, "-o", "-", *extra]


def labels_of(batches, test):
    for data, labels in batches:
        test.assertEqual(data.shape[1], DIM)
        test.assertEqual(data.dtype, np.float32)
        np.testing.assert_array_equal(data[:, 0], labels.astype(np.float32))
    return [int(x) for _, labels in batches for x in labels]


class ShardedStreaming(unittest.TestCase):
    def test_worker_processes_read_every_row_once_per_epoch_and_epochs_differ(self):
        for world in (1, 3, 4):
            per_epoch = []
            for epoch in (0, 1):
                # W processes at once, as W training ranks would.
                procs = [subprocess.Popen(STORE.cmd(*stream_args(epoch, r, world)), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE) for r in range(world)]
                outs = [p.communicate(timeout=300) for p in procs]
                order = epoch_order(ROWS, 7, epoch)
                everything = []
                for rank, (p, (out, err)) in enumerate(zip(procs, outs)):
                    self.assertEqual(p.returncode, 0, err.decode())
                    rows = labels_of(read_npy_stream(out), self)
                    # DistributedSampler semantics: rank r reads order[r::W].
                    self.assertEqual(rows, order[rank::world], f"world {world} rank {rank} epoch {epoch}")
                    everything += rows
                self.assertEqual(sorted(everything), list(range(ROWS)), f"world {world} epoch {epoch}")
                per_epoch.append(everything)
            self.assertNotEqual(per_epoch[0], per_epoch[1], f"world {world}: epochs 0 and 1 have the same order")

    def test_batches_are_identical_for_0_1_and_4_workers(self):
        for extra in ((), ("--drop-last",)):
            outs = {w: STORE.run(*stream_args(1, 1, 3, workers=w, extra=extra)).stdout for w in (0, 1, 4)}
            self.assertGreater(len(outs[0]), 0)
            self.assertEqual(outs[0], outs[1])
            self.assertEqual(outs[0], outs[4])
            sizes = [len(labels) for _, labels in read_npy_stream(outs[0])]
            # Rank 1 of 3 has 34 rows: 3 full batches and a short one unless --drop-last.
            self.assertEqual(sizes, [10, 10, 10] if extra else [10, 10, 10, 4])

    def test_remainder_policies(self):
        for policy, sizes in (("uneven", [26, 26, 26, 25]), ("drop", [25] * 4), ("pad", [26] * 4)):
            seen = []
            for rank in range(4):
                out = STORE.run(*stream_args(0, rank, 4, extra=("--remainder", policy))).stdout
                rows = labels_of(read_npy_stream(out), self)
                self.assertEqual(len(rows), sizes[rank], f"{policy} rank {rank}")
                seen += rows
            order = epoch_order(ROWS, 7, 0)
            if policy == "uneven":
                self.assertEqual(sorted(seen), list(range(ROWS)))
            elif policy == "drop":
                self.assertEqual(sorted(seen), sorted(order[:100]))
            else:
                self.assertEqual(sorted(seen), sorted(order + order[:1]))

    def test_stream_workers_default_to_none_where_rows_are_gathered_from_memory(self):
        # The local store gathers a batch with a memcpy from its mapping: threads would only add
        # handoffs, so the default is none there; stores read over the network keep 2.
        local = not os.environ.get("VSTASH_TRAINING_CONFIG")
        args = ("batch", "--stream", "--size", 16, "--shuffle", "--seed", 1, "-o", "-", "--json")
        default = json.loads(STORE.run(*args).stderr)
        self.assertEqual(default["workers"], 0 if local else 2)
        self.assertEqual(json.loads(STORE.run(*args, "--workers", 3).stderr)["workers"], 3)
        bad = STORE.run(*args, "--workers", -1, check=False)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--workers", bad.stderr.decode())

    def test_stream_widens_the_pipe_it_writes_to(self):
        # A 128 KiB batch through Linux's default 64 KiB pipe costs several wake-ups of both
        # ends: the stream asks for 1 MiB (not above fs.pipe-max-size; never smaller).
        import fcntl
        F_GETPIPE_SZ, F_SETPIPE_SZ = 1032, 1031
        with open("/proc/sys/fs/pipe-max-size") as f:
            want = max(65536, min(1 << 20, int(f.read())))
        r, w = os.pipe()
        fcntl.fcntl(w, F_SETPIPE_SZ, 65536)
        p = subprocess.Popen(STORE.cmd("batch", "--stream", "--size", 16, "--shuffle", "-o", "-"),
                             stdout=w, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            raw = f.read()
            size = fcntl.fcntl(f.fileno(), F_GETPIPE_SZ)
        self.assertEqual(p.wait(timeout=300), 0)
        self.assertEqual(sum(len(d) for d, _ in read_npy_stream(raw)), ROWS)
        self.assertEqual(size, want)

    def test_batch_files_and_resume(self):
        pattern = STORE.path("files/b{}.npy")
        os.makedirs(os.path.dirname(pattern), exist_ok=True)
        summary = STORE.json("batch", "--stream", "--size", 16, "--epoch", 2, "--shuffle", "--seed", 3, "--workers", 3,
                             "-o", pattern)
        self.assertEqual(summary["batches"], 7)
        self.assertEqual(summary["rows"], ROWS)
        order = epoch_order(ROWS, 3, 2)
        rows = []
        for i in range(7):
            base = pattern.replace("{}", f"{i:06d}")
            data = np.load(base)
            labels = np.load(base.replace(".npy", ".labels.npy"))
            ids = np.load(base.replace(".npy", ".ids.npy"))
            np.testing.assert_array_equal(data[:, 0], labels.astype(np.float32))
            self.assertEqual(len(ids), len(labels))
            rows += [int(x) for x in labels]
        self.assertEqual(rows, order)
        self.assertFalse(os.path.exists(pattern.replace("{}", "000007")))
        # Resuming at batch 4 writes exactly the remaining batches.
        tail = STORE.run("batch", "--stream", "--size", 16, "--epoch", 2, "--shuffle", "--seed", 3, "--start-batch", 4,
                         "-o", "-").stdout
        self.assertEqual(labels_of(read_npy_stream(tail), self), order[64:])

    def test_single_batch_of_a_shard(self):
        out = STORE.path("one.npy")
        STORE.run("batch", "--size", 5, "--offset", 10, "--shuffle", "--seed", 7, "--epoch", 1, "--rank", 2,
                  "--world-size", 3, "-o", out)
        self.assertEqual([int(x) for x in np.load(out.replace(".npy", ".labels.npy"))],
                         epoch_order(ROWS, 7, 1)[2::3][10:15])

    def test_bad_options_are_usage_errors(self):
        for args in (stream_args(0, 3, 3), stream_args(0, 0, 0), ["batch", "--stream", "--size", 4, "-o", "x.npy"],
                     ["batch", "--size", 4, "--drop-last", "-o", STORE.path("x.npy")],
                     stream_args(0, 0, 1, extra=("--remainder", "even"))):
            p = STORE.run(*args, check=False)
            self.assertEqual(p.returncode, 2, f"{args}: {p.stderr.decode()}")
            self.assertEqual(len(p.stderr.decode().strip().splitlines()), 1, p.stderr.decode())
            self.assertEqual(p.stdout, b"")


def read_stream(raw, per_batch):
    """Batches of an NPY stream of per_batch arrays each (data, labels[, ids])."""
    f = io.BytesIO(raw)
    out = []
    while f.tell() < len(raw):
        out.append(tuple(np.lib.format.read_array(f) for _ in range(per_batch)))
    return out


def split_of(row_id, seed, fractions):
    """The split recipe in workflows/training/selection.hpp."""
    h = 0xCBF29CE484222325
    for b in row_id.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    x = (_mix(h ^ _mix(seed)) >> 11) / 2.0**53
    c = 0.0
    for i, f in enumerate(fractions):
        c += f
        if x < c or i == len(fractions) - 1:
            return i


class EpochSelection(unittest.TestCase):
    def test_with_ids_streams_the_rows_ids_as_a_third_array(self):
        batches = read_stream(STORE.run(*stream_args(0, 1, 2, extra=("--with-ids",))).stdout, 3)
        self.assertEqual(len(batches), 6)
        for data, labels, ids in batches:
            self.assertEqual(ids.dtype.kind, "U")
            self.assertEqual(ids.shape, labels.shape)
            self.assertEqual([int(i) for i in ids], [int(x) for x in labels])  # ingest's ids: the row index
        self.assertEqual([int(i) for _, _, ids in batches for i in ids], epoch_order(ROWS, 7, 0)[1::2])

    def test_filter_orders_the_matching_rows(self):
        selected = list(range(50, ROWS))  # labels are the row positions
        order = [selected[p] for p in epoch_order(len(selected), 7, 0)]
        for world in (1, 2):
            for rank in range(world):
                out = STORE.run(*stream_args(0, rank, world, extra=("--filter", '{"$label": {"$gte": 50}}'))).stdout
                self.assertEqual(labels_of(read_npy_stream(out), self), order[rank::world])

    def test_split_parts_are_disjoint_cover_the_dataset_and_follow_the_recipe(self):
        fractions = [0.6, 0.2, 0.2]
        seen = []
        for k, take in enumerate(("train", "val", "test")):
            out = STORE.run(*stream_args(0, 0, 1, extra=("--split", "train=0.6,val=0.2,test=0.2", "--take", take)))
            rows = labels_of(read_npy_stream(out.stdout), self)
            selected = [i for i in range(ROWS) if split_of(str(i), 7, fractions) == k]
            self.assertEqual(rows, [selected[p] for p in epoch_order(len(selected), 7, 0)], take)
            seen += rows
        self.assertEqual(sorted(seen), list(range(ROWS)))

    def test_global_order_is_the_same_for_any_world_size_and_resumes_on_fewer_ranks(self):
        def rank_batches(rank, world, start=0):
            out = STORE.run("batch", "--stream", "--order", "global", "--global-batch-size", 12, "--shuffle", "--seed",
                            7, "--epoch", 1, "--rank", rank, "--world-size", world, "--start-batch", start,
                            "--workers", 2, "-o", "-").stdout
            return [[int(x) for x in labels] for _, labels in read_npy_stream(out)]
        single = rank_batches(0, 1)
        order = epoch_order(ROWS, 7, 1)
        self.assertEqual(single, [order[i:i + 12] for i in range(0, ROWS, 12)])
        for world in (2, 3, 4):
            ranks = [rank_batches(r, world) for r in range(world)]
            for k, expected in enumerate(single):
                self.assertEqual([x for rank in ranks if k < len(rank) for x in rank[k]], expected, f"W {world} k {k}")
        # Begun on 4 ranks, stopped after global batch 3, resumed on 2 ranks at global batch 4.
        read = [x for r in range(4) for batch in rank_batches(r, 4)[:4] for x in batch]
        read += [x for r in range(2) for batch in rank_batches(r, 2, start=4) for x in batch]
        self.assertEqual(sorted(read), list(range(ROWS)))

    def test_bad_selection_and_order_flags_are_one_line_usage_errors(self):
        cases = (
            (["--split", "train=0.5,val=0.4", "--take", "train"], "--split"),
            (["--split", "train=0.5,train=0.5", "--take", "train"], "--split"),
            (["--split", "train=1.5,val=-0.5", "--take", "train"], "--split"),
            (["--split", "train=1"], "--split"),
            (["--take", "train"], "--take"),
            (["--split", "train=0.5,val=0.5", "--take", "test"], "--take"),
            (["--filter", "{not json"], "--filter"),
            (["--order", "global", "--global-batch-size", 3], "--global-batch-size"),  # --size 10 x 1 rank
            (["--global-batch-size", 8], "--global-batch-size"),
            (["--order", "elastic"], "--order"),
            (["--order", "global", "--remainder", "pad"], "--remainder"),
        )
        for extra, names in cases:
            p = STORE.run(*stream_args(0, 0, 1, extra=tuple(extra)), check=False)
            err = p.stderr.decode()
            self.assertEqual(p.returncode, 2, f"{extra}: {err}")
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(names, err, extra)
            self.assertEqual(p.stdout, b"")
        p = STORE.run("batch", "--stream", "--order", "global", "--global-batch-size", 2, "--world-size", 4, "-o", "-",
                      check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("global batch size 2 is smaller than the world size 4", p.stderr.decode())
        p = STORE.run("batch", "--size", 4, "--with-ids", "-o", STORE.path("w.npy"), check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--with-ids", p.stderr.decode())


def params_for(epoch, shape=(32, 16)):
    return np.full(shape, epoch, dtype=np.float32) + np.arange(shape[1], dtype=np.float32)


def save_params(name, epoch, shape=(32, 16)):
    path = STORE.path(f"{name}-{epoch}.npy")
    np.save(path, params_for(epoch, shape))
    return path


class Checkpoints(unittest.TestCase):
    def test_four_processes_saving_at_once_leave_a_consistent_history_and_latest(self):
        model = STORE.model("concurrent")
        epochs = list(range(16))
        paths = {e: save_params(model, e) for e in epochs}
        errors = []
        seen_latest = []
        done = threading.Event()

        def saver(worker):
            # Worker w saves w, w+4, ... in descending order: older epochs keep arriving after
            # newer ones from the other workers, which latest must ignore.
            for e in sorted(epochs[worker::4], reverse=worker % 2 == 1):
                p = STORE.run("checkpoint", "save", "--model", model, "--epoch", e, "--params", paths[e],
                              "--metric", f"loss={1.0 / (e + 1)}", check=False, dataset=False)
                if p.returncode != 0:
                    errors.append(p.stderr.decode())

        def reader():
            # Every load of latest is a whole checkpoint, and latest never moves back.
            out = STORE.path("latest-read.npy")
            while not done.is_set():
                p = STORE.run("checkpoint", "load", f"{model}@latest", "-o", out, "--json", check=False, dataset=False)
                if p.returncode == 4:  # nothing saved yet
                    continue
                if p.returncode != 0:
                    errors.append(p.stderr.decode())
                    continue
                epoch = json.loads(p.stdout)["epoch"]
                if not np.array_equal(np.load(out), params_for(epoch)):
                    errors.append(f"latest epoch {epoch} loaded with other arrays")
                seen_latest.append(epoch)

        threads = [threading.Thread(target=saver, args=(w,)) for w in range(4)]
        watcher = threading.Thread(target=reader)
        watcher.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        watcher.join()
        self.assertEqual(errors, [])
        self.assertEqual(seen_latest, sorted(seen_latest), "latest moved backwards")
        listed = STORE.json("checkpoint", "list", "--model", model, dataset=False)["checkpoints"]
        self.assertEqual([c["epoch"] for c in listed], epochs)
        self.assertEqual([c["epoch"] for c in listed if c["latest"]], [15])
        for c in listed:
            self.assertAlmostEqual(c["metrics"]["loss"], 1.0 / (c["epoch"] + 1))
        out = STORE.path("check.npy")
        for e in epochs:
            STORE.run("checkpoint", "load", f"{model}@{e}", "-o", out, dataset=False)
            np.testing.assert_array_equal(np.load(out), params_for(e))
        self.assertEqual(STORE.json("checkpoint", "load", f"{model}@latest", dataset=False)["epoch"], 15)

    def test_concurrent_saves_with_retention_keep_the_newest_and_the_best(self):
        model = STORE.model("retained")
        epochs = list(range(12))
        loss = {e: abs(e - 5) + 0.5 for e in epochs}  # best at epoch 5
        paths = {e: save_params(model, e, (4, 4)) for e in epochs}
        errors = []

        def saver(worker):
            for e in epochs[worker::4]:
                p = STORE.run("checkpoint", "save", "--model", model, "--epoch", e, "--params", paths[e],
                              "--metric", f"loss={loss[e]}", "--keep", 3, "--keep-best", "loss:min", check=False,
                              dataset=False)
                if p.returncode != 0:
                    errors.append(p.stderr.decode())

        threads = [threading.Thread(target=saver, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        listed = STORE.json("checkpoint", "list", "--model", model, dataset=False)["checkpoints"]
        self.assertEqual([c["epoch"] for c in listed], [5, 9, 10, 11])
        self.assertEqual(STORE.json("checkpoint", "load", f"{model}@latest", dataset=False)["epoch"], 11)

    def test_retention_and_metrics_history(self):
        model = STORE.model("history")
        for e, acc in enumerate([0.5, 0.9, 0.7, 0.6, 0.8]):
            saved = STORE.json("checkpoint", "save", "--model", model, "--epoch", e, "--params",
                               save_params(model, e, (2, 2)), "--metric", f"acc={acc}", "--metric", f"loss={1 - acc}",
                               "--keep", 2, "--keep-best", "acc:max", dataset=False)
            self.assertEqual(saved["path"], f"{model}@{e}")
            if e == 2:
                self.assertEqual(saved["deleted"], [f"{model}@0"])
        listed = STORE.json("checkpoint", "list", "--model", model, dataset=False)["checkpoints"]
        self.assertEqual([(c["epoch"], c["metrics"]["acc"]) for c in listed], [(1, 0.9), (3, 0.6), (4, 0.8)])
        table = STORE.run("checkpoint", "list", "--model", model, dataset=False).stdout.decode()
        header = table.splitlines()[0].split()
        self.assertIn("acc", header)
        self.assertIn("loss", header)
        dry = STORE.json("checkpoint", "prune", "--model", model, "--keep", 1, "--dry-run", dataset=False)
        self.assertEqual(dry["deleted"], [f"{model}@1", f"{model}@3"])
        self.assertEqual(len(STORE.json("checkpoint", "list", "--model", model, dataset=False)["checkpoints"]), 3)
        pruned = STORE.json("checkpoint", "prune", "--model", model, "--keep", 1, dataset=False)
        self.assertEqual(pruned["kept"], [f"{model}@4"])
        bad = STORE.run("checkpoint", "prune", "--model", model, "--keep-best", "acc", check=False, dataset=False)
        self.assertEqual(bad.returncode, 2)
        bad = STORE.run("checkpoint", "save", "--model", model, "--epoch", 9, "--params", save_params(model, 9, (2, 2)),
                        "--keep", 0, check=False, dataset=False)
        self.assertEqual(bad.returncode, 2)
        self.assertEqual([c["epoch"] for c in STORE.json("checkpoint", "list", "--model", model,
                                                         dataset=False)["checkpoints"]], [4])

    def test_a_save_killed_midway_leaves_latest_on_a_complete_checkpoint(self):
        model = STORE.model("killed")
        STORE.run("checkpoint", "save", "--model", model, "--epoch", 1, "--params", save_params(model, 1), dataset=False)
        big_shape = (4096, 4096)  # 64 MiB: long enough to be caught while it is written
        big = save_params(model, 2, big_shape)
        size = os.path.getsize(big)
        proc = subprocess.Popen(STORE.cmd("checkpoint", "save", "--model", model, "--epoch", 2, "--params", big,
                                          dataset=False), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill once the process has read the whole parameter file, i.e. while it saves.
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with open(f"/proc/{proc.pid}/io") as f:
                    rchar = int(next(line for line in f if line.startswith("rchar:")).split()[1])
            except (OSError, StopIteration):
                break
            if rchar >= size:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed = proc.returncode == -signal.SIGKILL
        print(f"\n  save {'killed mid-save' if killed else 'finished before the kill'}", file=sys.stderr)
        out = STORE.path("after-kill.npy")
        loaded = STORE.json("checkpoint", "load", f"{model}@latest", "-o", out, dataset=False)
        if loaded["epoch"] == 2:
            np.testing.assert_array_equal(np.load(out), params_for(2, big_shape))
        else:
            self.assertTrue(killed)
            self.assertEqual(loaded["epoch"], 1)
            np.testing.assert_array_equal(np.load(out), params_for(1))
        listed = STORE.json("checkpoint", "list", "--model", model, dataset=False)["checkpoints"]
        self.assertEqual([c["epoch"] for c in listed], [1] if loaded["epoch"] == 1 else [1, 2])
        # The store still takes saves afterwards.
        STORE.run("checkpoint", "save", "--model", model, "--epoch", 3, "--params", save_params(model, 3), dataset=False)
        self.assertEqual(STORE.json("checkpoint", "load", f"{model}@latest", dataset=False)["epoch"], 3)


class Progress(unittest.TestCase):
    def test_workers_record_and_progress_shows_each_last_step(self):
        run = f"run-{STORE.suffix}"
        errors = []

        def worker(rank):
            for step in range(1, 6):
                p = STORE.run("progress", "record", "--run", run, "--rank", rank, "--epoch", 1, "--step",
                              step * 10 + rank, "--metric", f"loss={1.0 / step}", check=False, dataset=False)
                if p.returncode != 0:
                    errors.append(p.stderr.decode())

        threads = [threading.Thread(target=worker, args=(r,)) for r in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        shown = STORE.json("progress", "--run", run, dataset=False)["progress"]
        self.assertEqual([(r["rank"], r["epoch"], r["step"]) for r in shown], [(0, 1, 50), (1, 1, 51), (2, 1, 52)])
        for r in shown:
            self.assertEqual(r["run"], run)
            self.assertAlmostEqual(r["metrics"]["loss"], 0.2)
            self.assertGreaterEqual(r["seconds_since_update"], -5)
            self.assertLess(r["seconds_since_update"], 600)
        # `progress show` is the same listing as bare `progress`.
        again = STORE.json("progress", "show", "--run", run, dataset=False)["progress"]
        self.assertEqual([(r["rank"], r["step"], r["updated_at"]) for r in again],
                         [(r["rank"], r["step"], r["updated_at"]) for r in shown])
        table = STORE.run("progress", "--run", run, dataset=False).stdout.decode().splitlines()
        self.assertEqual(table[0].split()[:5], ["run", "rank", "epoch", "step", "ago"])
        self.assertEqual(len(table), 4)
        self.assertIn("52", table[3].split())
        bad = STORE.run("progress", "record", "--run", run, "--step", -1, check=False, dataset=False)
        self.assertEqual(bad.returncode, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
