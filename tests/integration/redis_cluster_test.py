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
#   node test: the shared cluster of the redis_cluster fixture through the profile
#     redis_cluster_node, a plain host/port of one node, which must be detected as a cluster.
# Arguments select tests by substring, "-WORD" leaves some out (tests/integration/clirun.py).
# Prints "N passed, N failed"; exits 1 on any failure.
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np

from clirun import BIN, one_line_error, read_prefix, run_tests, vstash, wait_until  # this folder is on sys.path

STATE = os.environ["VSTASH_TEST_STATE"]
SCRIPT = os.path.join(os.environ["VSTASH_SOURCE_DIR"], "tests", "servers", "redis_cluster.sh")
PREFIX = "vc:"  # the profiles' prefix (redis_cluster.sh)
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
    n, dataset = 200000, "fo_ingest"
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
    c.restart(killed)


def test_failover_during_batch_stream():
    c = private_cluster()
    n, dataset = 30000, "fo_stream"
    data = write_npy("stream.npy", n, 32, seed=12)
    vstash(c.yaml, "redis_cluster", "--dataset", dataset, "ingest", data, check=0)

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
        # The rows after the kill came from the promoted replica (not all read ahead before it).
        sent = c.net_output_bytes(promoted) - sent_before
        assert sent > want.nbytes // 4, f"the promoted master sent {sent} bytes: the stream did not read from it"
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
