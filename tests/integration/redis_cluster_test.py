#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The vstash CLI against a real Redis Cluster (tests/servers/redis_cluster.sh: 3 masters, 3
# replicas on loopback).
#   failover tests: a private cluster of their own (its own state dir), because they kill -9
#     the master that owns a dataset's slot (the slot of its hash tag, backends/redis/
#     redisstore.hpp) during `vstash ingest` and during `vstash batch --stream`; after its
#     replica takes over, the command has succeeded or exited 3 with one line, `ingest --resume`
#     finishes, and the dataset read back equals the input exactly (no duplicate, no gap).
#     The killed node is restarted (it rejoins as a replica) before the next test.
#     Their datasets are spread: the master killed holds the manifest and one shard of three.
#   node test: the shared cluster of the redis_cluster fixture through the profile
#     redis_cluster_node, a plain host/port of one node, which must be detected as a cluster.
#   spread tests (the shared cluster): one dataset's chunks over the masters (docs/backends.md
#     "### Redis": profile key shards_per_dataset, default the masters seen at creation; chunk C
#     under the hash tag {NAME/C mod S}, manifest and ids under {NAME}). The keys are found by
#     SCAN on every master, their slots by CLUSTER KEYSLOT's hash (key_slot) and CLUSTER NODES:
#     - layout_and_reads: chunks on three masters, export, batch and a shuffled epoch bit for bit
#       (the epoch equal to a shards_per_dataset: 1 dataset's, which is on one master); a
#       manifest without shards is one shard and stays so; bad values exit 2 with one line;
#     - reader_never_sees_half_a_write: a writer replaces a 4-chunk block in one commit again and
#       again while get and batch read it: every read shows one write's values;
#     - four_ranks: tests/integration/sharded_ingest_test.py on the cluster (4 ranks equal one
#       ingest byte for byte, kill -9 of a rank and --resume), its datasets checked spread.
# Arguments select tests by substring, "-WORD" leaves some out (tests/integration/clirun.py).
# Prints "N passed, N failed"; exits 1 on any failure.
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import numpy as np
import yaml

from clirun import BIN, one_line_error, read_prefix, run_tests, vstash, wait_until  # this folder is on sys.path

STATE = os.environ["VSTASH_TEST_STATE"]
SCRIPT = os.path.join(os.environ["VSTASH_SOURCE_DIR"], "tests", "servers", "redis_cluster.sh")
PREFIX = "vc:"  # the profiles' prefix (redis_cluster.sh)
SHARDS = 3  # shards per dataset by default on the test cluster: its masters
os.makedirs(STATE, exist_ok=True)
SCRATCH = tempfile.mkdtemp(prefix="redis-cluster-", dir=STATE)


class Cluster:
    """A cluster started by redis_cluster.sh in STATE_DIR (the shared one or a private one)."""

    def __init__(self, state_dir):
        self.env = dict(os.environ, VSTASH_TEST_STATE=state_dir)
        self.state = state_dir
        self.yaml = os.path.join(state_dir, "redis_cluster.yaml")

    def script(self, *args, check=True):
        p = subprocess.run(["bash", SCRIPT, *args], env=self.env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"redis_cluster.sh {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def ports(self):
        with open(os.path.join(self.state, "redis-cluster.ports")) as f:
            return [int(line) for line in f if line.strip()]

    def cli(self, port, *args):
        return self.script("cli", str(port), *args, check=False).strip()

    def slot_of_dataset(self, dataset):
        for port in self.ports():  # any node that answers (one may have been killed)
            slot = self.cli(port, "cluster", "keyslot", f"{PREFIX}ds:{{{dataset}}}:manifest")
            if slot.isdigit():
                return int(slot)
        raise AssertionError("no cluster node answers CLUSTER KEYSLOT")

    def owner(self, slot, exclude=()):
        """The port of the live master serving SLOT as a node other than EXCLUDE sees it, or None."""
        for asker in self.ports():
            if asker in exclude:
                continue
            for line in self.cli(asker, "cluster", "nodes").splitlines():
                f = line.split()
                if len(f) < 8 or "master" not in f[2] or "fail" in f[2] or f[7] != "connected":
                    continue
                for r in f[8:]:
                    if r.startswith("["):
                        continue
                    lo, _, hi = r.partition("-")
                    if int(lo) <= slot <= int(hi or lo):
                        return int(f[1].split("@")[0].rsplit(":", 1)[1])
            return None
        return None

    def kill_master_of(self, dataset):
        """kill -9 the master owning DATASET's slot; waits (bounded) until a replica serves it."""
        slot = self.slot_of_dataset(dataset)
        master = self.owner(slot)
        assert master is not None, f"no master serves slot {slot}"
        os.kill(int(self.script("pid", str(master)).strip()), signal.SIGKILL)

        def promoted():
            now = self.owner(slot, exclude=(master,))
            return now is not None and now != master and "cluster_state:ok" in self.cli(now, "cluster", "info")

        wait_until(promoted, 60, f"a replica to take over slot {slot} from 127.0.0.1:{master}")
        return master

    def masters(self):
        """{port: [(first slot, last slot), ...]} of the live masters, as the first node that answers
        CLUSTER NODES sees them."""
        for asker in self.ports():
            found = {}
            for line in self.cli(asker, "cluster", "nodes").splitlines():
                f = line.split()
                if len(f) < 8 or "master" not in f[2] or "fail" in f[2] or f[7] != "connected":
                    continue
                ranges = [r.partition("-") for r in f[8:] if not r.startswith("[")]
                if ranges:
                    port = int(f[1].split("@")[0].rsplit(":", 1)[1])
                    found[port] = [(int(lo), int(hi or lo)) for lo, _, hi in ranges]
            if found:
                return found
        raise AssertionError("no cluster node answers CLUSTER NODES")

    def dataset_keys(self, dataset, prefix=PREFIX):
        """{master port: [keys]}: DATASET's keys under its hash tag {NAME} and its shards' {NAME/K},
        found by SCAN on every master (NAME without glob characters)."""
        pattern = f"{prefix}ds:{{{dataset}[}}/]*"
        return {port: self.cli(port, "--scan", "--pattern", pattern).split() for port in self.masters()}

    def net_output_bytes(self, port):
        info = self.cli(port, "info", "stats")
        return int(next(line for line in info.splitlines() if line.startswith("total_net_output_bytes:")).split(":")[1])

    def restart(self, port):
        self.script("restart", str(port))
        self.script("wait")


def write_npy(name, rows, dim, seed):
    path = os.path.join(SCRATCH, name)
    np.save(path, np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32))
    return path


def check_dataset_equals(cluster, dataset, data_path):
    """The dataset exported equals the input file: same shape, same bytes, in the same order."""
    out = os.path.join(SCRATCH, f"{dataset}-export.npy")
    vstash(cluster.yaml, "redis_cluster", "--dataset", dataset, "export", "-o", out, check=0)
    got, want = np.load(out), np.load(data_path)
    assert got.shape == want.shape, f"exported {got.shape}, ingested {want.shape}: a gap or a duplicate"
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.tobytes() == want.tobytes(), "the exported rows differ from the input"


def key_slot(key):
    """Redis Cluster's slot of KEY: CRC16-XMODEM of its hash tag (the first non-empty {...}, else the
    whole key) mod 16384, as CLUSTER KEYSLOT computes it."""
    k = key.encode()
    first = k.find(b"{")
    last = k.find(b"}", first + 1) if first >= 0 else -1
    if last > first + 1:
        k = k[first + 1:last]
    crc = 0
    for b in k:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc % 16384


def master_of_slot(masters, slot):
    return next(port for port, ranges in masters.items() if any(lo <= slot <= hi for lo, hi in ranges))


def spread_name(cluster, stem, shards=SHARDS):
    """The first name STEM<i> whose shard hash tags {NAME/0} .. {NAME/SHARDS-1} fall on SHARDS different
    masters (the layout of docs/backends.md "### Redis"), so that the dataset is spread for certain."""
    masters = cluster.masters()
    for i in range(1000):
        name = f"{stem}{i}"
        if len({master_of_slot(masters, key_slot(f"{{{name}/{k}}}")) for k in range(shards)}) == shards:
            return name
    raise AssertionError(f"no name {stem}<i> has its {shards} shards on {shards} masters")


def assert_layout(cluster, dataset, shards):
    """DATASET's manifest says SHARDS (none or 1 for one shard); chunk C's keys, found by SCAN on every
    master, are under the hash tag {NAME/C mod SHARDS} ({NAME} for one shard), each on the master
    serving its slot. Returns (the ports of the masters holding chunks, the chunk numbers seen)."""
    masters = cluster.masters()
    manifest = f"{PREFIX}ds:{{{dataset}}}:manifest"
    got = cluster.cli(master_of_slot(masters, key_slot(manifest)), "hget", manifest, "shards")
    assert got == str(shards) or (shards == 1 and got == ""), f"{manifest} shards: {got!r}, want {shards}"
    holders, chunks = set(), set()
    for port, keys in cluster.dataset_keys(dataset).items():
        for key in keys:
            m = re.search(r":chunk:(\d+)", key)
            if not m:
                continue
            chunk, tag = int(m.group(1)), key[key.index("{") + 1:key.index("}")]
            want = dataset if shards == 1 else f"{dataset}/{chunk % shards}"
            assert tag == want, f"{key}: chunk {chunk} under {{{tag}}}, want {{{want}}}"
            assert master_of_slot(masters, key_slot(key)) == port, f"{key} on 127.0.0.1:{port}, not its slot's master"
            holders.add(port)
            chunks.add(chunk)
    assert chunks, f"no chunk key of {dataset} on any master"
    return holders, chunks


def profile_copy(cluster, name, **keys):
    """A profile file in SCRATCH holding the profile redis_cluster with KEYS added."""
    with open(cluster.yaml) as f:
        profile = dict(yaml.safe_load(f)["profiles"]["redis_cluster"], **keys)
    path = os.path.join(SCRATCH, f"{name}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"profiles": {"redis_cluster": profile}}, f)
    return path


_private = None


def private_cluster():
    """The failover tests' own cluster, started once (preferred base: the shared one's + 12)."""
    global _private
    if _private is None:
        base = int(os.environ.get("VSTASH_TEST_REDIS_CLUSTER_PORT", "56400")) + 12
        c = Cluster(tempfile.mkdtemp(prefix="private-", dir=SCRATCH))
        c.env["VSTASH_TEST_REDIS_CLUSTER_PORT"] = str(base)
        _private = c
        c.script("start")
    return _private


# --- tests ---------------------------------------------------------------------------------
def across_failover(c, dataset, args, before_kill):
    """Runs `vstash --dataset DATASET ARGS` on cluster C; once BEFORE_KILL(proc) has returned
    (what it read of stdout), kills the master of DATASET's slot and waits for its replica. The
    command must end with exit 0, or 3 and one line. Returns (killed port, promoted port, the
    promoted master's output bytes at the kill, stdout as bytes, stderr, exit code)."""
    cmd = [BIN, "--config", c.yaml, "--profile", "redis_cluster", "--no-progress", "--dataset", dataset, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        head = before_kill(proc)
        killed = c.kill_master_of(dataset)
        promoted = c.owner(c.slot_of_dataset(dataset), exclude=(killed,))
        sent_before = c.net_output_bytes(promoted)
        tail, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err.decode()
    what = f"{args[0]} across the failover of 127.0.0.1:{killed}"
    assert proc.returncode in (0, 3), f"{what}: exit {proc.returncode}, stderr {err!r}"
    print(f"  {what}: exit {proc.returncode}", flush=True)
    if proc.returncode == 3:
        one_line_error(err)
    return killed, promoted, sent_before, head + tail, proc.returncode


def test_failover_during_ingest_then_resume():
    c = private_cluster()
    n, dataset = 200000, spread_name(c, "fo_ingest_")  # the master killed holds one shard of three
    data = write_npy("ingest.npy", n, 32, seed=11)
    master = c.owner(c.slot_of_dataset(dataset))

    def some_rows(proc):
        def written():
            assert proc.poll() is None, f"the ingest ended before the kill (exit {proc.returncode}): more work"
            v = c.cli(master, "hget", f"{PREFIX}ds:{{{dataset}}}:manifest", "next_index")
            return v.isdigit() and int(v) >= 20000

        wait_until(written, 120, "the ingest to write 20000 rows")
        return b""

    killed, _, _, _, rc = across_failover(c, dataset, ["ingest", data, "--batch-size", "2000"], some_rows)
    if rc == 3:
        p = vstash(c.yaml, "redis_cluster", "--dataset", dataset, "ingest", data, "--batch-size", "2000",
                   "--resume", check=0)
        assert "resuming at row" in p.stderr, p.stderr
    check_dataset_equals(c, dataset, data)
    holders, _ = assert_layout(c, dataset, SHARDS)
    assert len(holders) == SHARDS, f"after the failover {dataset}'s chunks are on {sorted(holders)} only"
    c.restart(killed)


def test_failover_during_batch_stream():
    c = private_cluster()
    n, dataset = 30000, spread_name(c, "fo_stream_")
    data = write_npy("stream.npy", n, 32, seed=12)
    vstash(c.yaml, "redis_cluster", "--dataset", dataset, "ingest", data, check=0)
    holders, _ = assert_layout(c, dataset, SHARDS)
    assert len(holders) == SHARDS, f"{dataset}'s chunks are on {sorted(holders)} only"

    def twenty_batches(proc):
        head = read_prefix(proc, 256 * 32 * 4 * 20)
        assert proc.poll() is None, "the stream finished before the kill: give it more work"
        return head

    args = ["batch", "--size", "256", "--stream", "-o", "-"]
    killed, promoted, sent_before, out, rc = across_failover(c, dataset, args, twenty_batches)
    f, arrays = io.BytesIO(out), []
    while True:
        try:
            arrays.append(np.load(f, allow_pickle=False))
        except (ValueError, EOFError, OSError):
            break  # the end, or a batch cut short by the failure
    rows = [a for a in arrays if a.ndim == 2]
    got = np.concatenate(rows) if rows else np.zeros((0, 32), np.float32)
    want = np.load(data)
    if rc == 0:
        assert np.array_equal(got, want), "the batch stream across a failover is not the dataset"
        # The rows after the kill came from the promoted replica (not all read ahead before it): it
        # holds one shard of SHARDS, and the kill came after about a sixth of the stream.
        sent = c.net_output_bytes(promoted) - sent_before
        assert sent > want.nbytes // (4 * SHARDS), f"the promoted master sent {sent} bytes: the stream did not read it"
    else:
        assert np.array_equal(got, want[: len(got)]), "the batches before the failure are not the dataset's first rows"
    c.restart(killed)


def test_plain_host_port_of_a_node_is_detected_as_a_cluster():
    c = Cluster(STATE)  # the shared cluster of the redis_cluster fixture
    node = c.ports()[0]
    # A dataset whose slot another node serves: a single-node client would get MOVED.
    names = (f"plain_{os.getpid()}_{i}" for i in range(1000))  # new in this run
    dataset = next(d for d in names if c.owner(c.slot_of_dataset(d)) != node)
    data = write_npy("plain.npy", 5000, 16, seed=13)
    vstash(c.yaml, "redis_cluster_node", "--dataset", dataset, "ingest", data, check=0)
    out = os.path.join(SCRATCH, "plain-export.npy")
    vstash(c.yaml, "redis_cluster_node", "--dataset", dataset, "export", "-o", out, check=0)
    assert np.load(out).tobytes() == np.load(data).tobytes(), "the rows read back through one node differ"
    owner = c.owner(c.slot_of_dataset(dataset))
    key = f"vcn:ds:{{{dataset}}}:manifest"
    assert c.cli(owner, "exists", key) == "1", f"{key} is not on 127.0.0.1:{owner}, the slot's master"


def batch_stream(config, dataset, *args):
    """`batch --stream -o -` of DATASET through the profile redis_cluster of CONFIG: the NPY stream's bytes."""
    cmd = [BIN, "--config", config, "--profile", "redis_cluster", "--no-progress", "--dataset", dataset, "batch",
           "--stream", "-o", "-", *args]
    p = subprocess.run(cmd, capture_output=True, timeout=300)
    assert p.returncode == 0, f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.decode().strip()}"
    assert p.stdout, f"{' '.join(cmd)}: nothing written"
    return p.stdout


def test_spread_dataset_layout_and_reads():
    c = Cluster(STATE)
    masters = c.masters()
    assert len(masters) == SHARDS, f"the test cluster has {len(masters)} masters"
    probe = f"{PREFIX}ds:{{probe/1}}:chunk:1"
    assert str(key_slot(probe)) == c.cli(next(iter(masters)), "cluster", "keyslot", probe), "key_slot is wrong"
    # The default profile: as many shards as masters, chunks on all three, reads bit for bit.
    rows, dim = 5000, 24
    dataset = spread_name(c, f"spread_{os.getpid()}_")
    data = write_npy("spread.npy", rows, dim, seed=21)
    labels = os.path.join(SCRATCH, "spread-labels.npy")
    np.save(labels, np.arange(rows, dtype=np.int64) % 7)
    vstash(c.yaml, "redis_cluster", "--dataset", dataset, "ingest", data, "--labels", labels, check=0)
    holders, chunks = assert_layout(c, dataset, SHARDS)
    assert len(holders) == SHARDS, f"{dataset}'s chunks are on {sorted(holders)} only"
    assert chunks == set(range(len(chunks))), f"{dataset}: chunks {sorted(chunks)}"
    check_dataset_equals(c, dataset, data)
    out = os.path.join(SCRATCH, "spread-batch.npy")
    vstash(c.yaml, "redis_cluster", "--dataset", dataset, "batch", "--size", str(rows), "-o", out, check=0)
    assert np.load(out).tobytes() == np.load(data).tobytes(), "a whole-dataset batch differs from the input"
    assert np.load(out[:-4] + ".labels.npy").tobytes() == np.load(labels).tobytes(), "its labels differ"
    # shards_per_dataset: 1, one master; its shuffled epoch is the spread one's, byte for byte.
    one = profile_copy(c, "one-shard", shards_per_dataset=1)
    single = f"single_{os.getpid()}"
    vstash(one, "redis_cluster", "--dataset", single, "ingest", data, "--labels", labels, check=0)
    holders, _ = assert_layout(c, single, 1)
    assert len(holders) == 1, f"{single} (shards_per_dataset: 1) has chunks on {sorted(holders)}"
    shuffled = ["--size", "300", "--shuffle", "--seed", "7", "--epoch", "2"]
    assert batch_stream(c.yaml, dataset, *shuffled) == batch_stream(one, single, *shuffled), \
        "the shuffled epoch of the spread dataset differs from the one-shard dataset's"
    # A dataset written before the field (no shards in its manifest) is one shard, and stays one.
    c.cli(master_of_slot(masters, key_slot(f"{{{single}}}")), "hdel", f"{PREFIX}ds:{{{single}}}:manifest", "shards")
    more = write_npy("spread-more.npy", 1000, dim, seed=22)
    np.save(os.path.join(SCRATCH, "spread-more-labels.npy"), np.zeros(1000, np.int64))
    vstash(c.yaml, "redis_cluster", "--dataset", single, "ingest", more, "--labels",
           os.path.join(SCRATCH, "spread-more-labels.npy"), "--append", check=0)
    holders, _ = assert_layout(c, single, 1)
    assert len(holders) == 1, f"{single} without shards in its manifest was spread by an append: {sorted(holders)}"
    both = os.path.join(SCRATCH, "spread-both.npy")
    np.save(both, np.concatenate([np.load(data), np.load(more)]))
    check_dataset_equals(c, single, both)
    # Bad values: exit 2, one line naming the key, nothing written.
    for i, bad in enumerate([0, "x", 257, -1, 2.5]):
        name = f"bad_{os.getpid()}_{i}"
        p = vstash(profile_copy(c, f"bad{i}", shards_per_dataset=bad), "redis_cluster", "--dataset", name, "ingest",
                   data, check=2)
        assert "shards_per_dataset" in one_line_error(p.stderr), f"shards_per_dataset: {bad!r}: {p.stderr!r}"
        assert not any(c.dataset_keys(name).values()), f"shards_per_dataset: {bad!r} wrote keys of {name}"


def test_spread_reader_never_sees_half_a_write():
    """A writer replaces a block of 1024 rows (4 chunks, every shard) again and again, each time in one
    ingest block (one commit), every row to the same value v = 1, 2, ...; a reader beside it must see
    one value across the rows it reads, never going back."""
    c = Cluster(STATE)
    dataset = spread_name(c, f"rw_{os.getpid()}_")
    n, dim, writes = 1024, 16, 40
    ids = os.path.join(SCRATCH, "rw-ids.npy")
    np.save(ids, np.array([f"b{i:04d}" for i in range(n)]))
    files = []
    for v in range(writes + 1):
        files.append(os.path.join(SCRATCH, f"rw-{v}.npy"))
        np.save(files[-1], np.full((n, dim), v, np.float32))
    vstash(c.yaml, "redis_cluster", "--dataset", dataset, "ingest", files[0], "--ids", ids, check=0)
    errors = []

    def writer():  # --append with the same ids: each row replaced whole, the block in one commit
        try:
            for v in range(1, writes + 1):
                vstash(c.yaml, "redis_cluster", "--dataset", dataset, "ingest", files[v], "--ids", ids, "--append",
                       "--batch-size", str(n), check=0)
        except Exception as e:  # noqa: BLE001 - reported after the join
            errors.append(e)

    probe = [f"b{i:04d}" for i in range(0, n, 97)]  # rows of every chunk of the block
    out = os.path.join(SCRATCH, "rw-batch.npy")
    seen, last, reads = set(), 0, 0

    def one_value(values, what):
        nonlocal last, reads
        assert len(values) == 1, f"{what} returned a half-applied write: values {sorted(values)}"
        v = values.pop()
        assert v >= last, f"{what} went back from {last} to {v}"
        seen.add(v)
        last, reads = v, reads + 1

    t = threading.Thread(target=writer)
    t.start()
    deadline = time.monotonic() + 400
    try:
        while t.is_alive():
            assert time.monotonic() < deadline, "the writer did not finish in 400 s"
            p = vstash(c.yaml, "redis_cluster", "--dataset", dataset, "get", *probe, "--include-values", "--json",
                       check=0)
            got = json.loads(p.stdout)["rows"]
            assert len(got) == len(probe), p.stdout
            one_value({x for r in got for x in r["values"]}, "get")
            vstash(c.yaml, "redis_cluster", "--dataset", dataset, "batch", "--size", str(n), "-o", out, check=0)
            block = np.load(out)
            assert block.shape == (n, dim), f"batch returned {block.shape}"
            one_value(set(np.unique(block).tolist()), "batch")
    finally:
        t.join(timeout=400)
    assert not errors, errors[0]
    assert len(seen) >= 2, f"the {reads} reads saw only {sorted(seen)}: none overlapped a write"
    holders, _ = assert_layout(c, dataset, SHARDS)
    assert len(holders) > 1, f"the block's chunks are on {sorted(holders)} only: no multi-shard write was tested"
    check_dataset_equals(c, dataset, files[writes])


def test_spread_four_ranks_equal_one_ingest():
    """tests/integration/sharded_ingest_test.py on the cluster (4 ranks equal one ingest byte for byte,
    kill -9 of a rank and --resume, copy ranks, flag errors), every dataset it compares checked to be
    spread over the shards."""
    os.environ.update(VSTASH_SHARD_CONFIG=Cluster(STATE).yaml, VSTASH_SHARD_PROFILE="redis_cluster")
    import sharded_ingest_test  # reads the two variables when imported

    class Spread(sharded_ingest_test.ShardedIngestTest):
        def assert_same_export(self, single, sharded):
            super().assert_same_export(single, sharded)
            for name in (single, sharded):
                _, chunks = assert_layout(Cluster(STATE), name, SHARDS)
                assert len(chunks) >= SHARDS, f"{name}: chunks {sorted(chunks)}"

    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Spread)
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    assert result.wasSuccessful(), "sharded_ingest_test.py failed on the cluster"


def main():
    try:
        failed = run_tests(globals(), sys.argv[1:])
    finally:
        if _private is not None:
            _private.script("stop", check=False)
    if not failed:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
