#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The vstash CLI against redis-server: one-line errors and exit codes (refused, auth, OOM), a
# server killed mid-ingest and --resume, round trips per ingest, and the cache tier seen from
# the CLI (stats counters, the cache-down warning). Tests that break a server start a private
# one (redis-server on a free loopback port, data in the state dir); the rest use the shared
# test server of tests/servers/redis.sh. Prints "N passed, N failed"; exits 1 on any failure.
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import redis

from clirun import BIN, one_line_error, read_prefix, run_tests, vstash, wait_until  # this folder is on sys.path

STATE = os.environ["VSTASH_TEST_STATE"]
SHARED_YAML = os.path.join(STATE, "redis.yaml")
SCRATCH = tempfile.mkdtemp(prefix="redis-cli-", dir=STATE)
SHARED_PW = "vstash-test-redis-pw-K3m"
# The port tests/servers/redis.sh chose (the configured one may have been taken).
with open(os.path.join(STATE, "redis.port")) as _f:
    SHARED_PORT = int(_f.read())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateServer:
    """A redis-server of this test alone, so that it can be killed or starved of memory."""

    def __init__(self, name, aof=False):
        self.dir = os.path.join(SCRATCH, name)
        os.makedirs(self.dir, exist_ok=True)
        self.aof = aof
        self.proc = None
        # free_port() only suggests a port: another process may bind it first, and then the
        # server exits (address in use) and another port is tried. start() checks that the
        # server answering is this one (its pid), never a foreign one.
        for _ in range(20):
            self.port = free_port()
            if self.start(first=True):
                return
        raise AssertionError("no free loopback port for a private redis-server")

    def start(self, first=False):
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
                "--save", "", "--logfile", os.path.join(self.dir, "redis.log")]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(host="127.0.0.1", port=self.port)

        def up():
            if self.proc.poll() is not None:
                return True  # exited: the port was taken
            try:
                return self.client.info("server")["process_id"] == self.proc.pid
            except redis.exceptions.ConnectionError:
                return False
            except redis.exceptions.BusyLoadingError:
                return False

        wait_until(up, 20, f"redis-server on port {self.port}")
        if self.proc.poll() is not None:
            if first:
                return False
            raise AssertionError(f"redis-server exited on port {self.port} (see {self.dir}/redis.log)")
        return True

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def yaml(self, extra=""):
        path = os.path.join(self.dir, "profiles.yaml")
        with open(path, "w") as f:
            f.write(f"profiles:\n  p:\n    type: redis\n    host: 127.0.0.1\n    port: {self.port}\n"
                    f"    prefix: \"v:\"\n    timeout_ms: 5000\n{extra}")
        return path


def write_npy(name, rows, dim, seed=0):
    path = os.path.join(SCRATCH, name)
    np.save(path, np.random.default_rng(seed).standard_normal((rows, dim), dtype=np.float32))
    return path


def write_yaml(name, text):
    path = os.path.join(SCRATCH, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def unique(prefix):
    return f"{prefix}_{os.getpid()}_{time.monotonic_ns() % 1000000}"


# --- tests ---------------------------------------------------------------------------------

def test_connection_refused_is_retryable_one_line():
    port = free_port()  # closed again on return: nothing listens
    cfg = write_yaml("refused.yaml", f"profiles:\n  p:\n    type: redis\n    host: 127.0.0.1\n    port: {port}\n")
    p = vstash(cfg, "p", "stats", check=3)
    line = one_line_error(p.stderr)
    assert f"127.0.0.1:{port}" in line and "refused" in line, line


def test_auth_failure_names_no_secret():
    cfg = write_yaml("wrongpw.yaml", f"profiles:\n  p:\n    type: redis\n    host: 127.0.0.1\n    port: {SHARED_PORT}\n"
                                     f"    password: wrong-secret-Zq1\n")
    p = vstash(cfg, "p", "stats", check=2)
    line = one_line_error(p.stderr)
    assert "authentication failed" in line, line
    assert "wrong-secret-Zq1" not in line and SHARED_PW not in line, line
    cfg2 = write_yaml("nopw.yaml", f"profiles:\n  p:\n    type: redis\n    host: 127.0.0.1\n    port: {SHARED_PORT}\n")
    p = vstash(cfg2, "p", "stats", check=2)
    assert "authentication required" in one_line_error(p.stderr)


def test_oom_is_one_line_and_leaves_no_partial_batch():
    srv = PrivateServer("oom")
    try:
        cfg = srv.yaml()
        data = write_npy("oom.npy", 20000, 128)  # ~10 MB of samples
        srv.client.config_set("maxmemory", "4mb")
        p = vstash(cfg, "p", "--dataset", "d", "ingest", data, "--batch-size", "2000")
        assert p.returncode != 0, "ingest past maxmemory succeeded"
        line = one_line_error(p.stderr)
        assert "OOM" in line and "maxmemory" in line and f"127.0.0.1:{srv.port}" in line, line
        # Every batch is one MULTI/EXEC: the rows that are there are whole batches, and the
        # watermark says how many; --resume after raising the limit finishes without duplicates.
        st = vstash(cfg, "p", "--json", "stats", check=0)
        srv.client.config_set("maxmemory", "0")
        vstash(cfg, "p", "--dataset", "d", "ingest", data, "--batch-size", "2000", "--resume", check=0)
        check_complete(cfg, "d", 20000, data)
        assert st.returncode == 0
    finally:
        srv.stop()


def check_complete(cfg, dataset, n, data_path):
    import json
    st = json.loads(vstash(cfg, "p", "--json", "--dataset", dataset, "stats", check=0).stdout)
    rows = st["datasets"][0]["rows"]
    assert rows == n, f"{rows} rows after resume, want {n}"
    out = os.path.join(SCRATCH, unique("all") + ".npy")
    vstash(cfg, "p", "--dataset", dataset, "batch", "--size", str(n), "-o", out, check=0)
    got = np.load(out)
    want = np.load(data_path)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert np.array_equal(got, want), "rows read back differ from the file"


def test_server_killed_mid_ingest_then_resume():
    srv = PrivateServer("kill", aof=True)
    try:
        cfg = srv.yaml()
        n = 200000
        data = write_npy("kill.npy", n, 32, seed=3)
        cmd = [BIN, "--config", cfg, "--profile", "p", "--no-progress", "--dataset", "k", "ingest", data,
               "--batch-size", "2000"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def some_rows():
            try:
                v = srv.client.hget("v:ds:{k}:manifest", "next_index")
                return v is not None and int(v) >= 20000
            except redis.exceptions.RedisError:
                return False

        wait_until(some_rows, 120, "the ingest to write 20000 rows")
        srv.kill()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 3, f"exit {proc.returncode}, stderr {err!r}"
        line = one_line_error(err)
        assert f"127.0.0.1:{srv.port}" in line, line
        srv.start()  # the append-only file brings back a consistent prefix of the batches
        partial = int(srv.client.hget("v:ds:{k}:manifest", "next_index"))
        assert 0 < partial < n, partial
        p = vstash(cfg, "p", "--dataset", "k", "ingest", data, "--batch-size", "2000", "--resume", check=0)
        assert "resuming at row" in p.stderr, p.stderr
        check_complete(cfg, "k", n, data)
    finally:
        srv.stop()


def restart_during(srv, cfg, args, read_first):
    """Runs vstash ARGS on srv, reads read_first bytes of its stdout, kills the server and
    starts it again on its port (the append-only file brings the data back), reads the rest.
    The command must succeed (a read reconnects and runs once more); a hang fails (bounded)."""
    cmd = [BIN, "--config", cfg, "--profile", "p", "--no-progress", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = read_prefix(proc, read_first)
    assert proc.poll() is None, "the command finished before the restart: give it more work"
    srv.kill()
    srv.start()
    try:
        tail, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"{' '.join(args)} hangs after a server restart")
    assert proc.returncode == 0, f"{' '.join(args)} across a restart: exit {proc.returncode}: {err.decode()!r}"
    return head + tail


def test_server_restarted_during_batch_stream_and_queries():
    import io
    srv = PrivateServer("restart", aof=True)
    try:
        cfg = srv.yaml("    connect_timeout_ms: 20000\n")
        n = 30000
        data = write_npy("restart.npy", n, 32, seed=4)
        vstash(cfg, "p", "--dataset", "r", "ingest", data, check=0)
        out = restart_during(srv, cfg, ["--dataset", "r", "batch", "--size", "256", "--stream", "-o", "-"],
                             256 * 32 * 4 * 20)
        f, arrays = io.BytesIO(out), []
        while f.tell() < len(out):
            arrays.append(np.load(f, allow_pickle=False))
        got = np.concatenate([a for a in arrays if a.ndim == 2])
        assert np.array_equal(got, np.load(data)), "the batch stream across a restart is not the dataset"
        queries = write_npy("restart_q.npy", 200, 32, seed=5)
        args = ["--dataset", "r", "query", "--queries", queries, "-k", "5"]
        want = vstash(cfg, "p", *args, check=0).stdout.encode().splitlines()
        out = restart_during(srv, cfg, args, len(b"\n".join(want[:20])))
        assert out.splitlines() == want, "queries across a restart gave other hits"
    finally:
        srv.stop()


def test_ingest_sends_few_commands_per_row():
    # INFO commandstats on a fresh private server (no other client adds to it): the ingest's
    # commands, which must be a small fraction of its rows. (Round trips are counted exactly
    # by redis_unit through the connection's counter.)
    srv = PrivateServer("rtt")
    try:
        cfg = srv.yaml()
        rows = 20000
        data = write_npy("rtt.npy", rows, 128)
        calls_before = sum(v["calls"] for v in srv.client.info("commandstats").values())
        vstash(cfg, "p", "--dataset", "r", "ingest", data, "--batch-size", "10000", check=0)
        calls_after = sum(v["calls"] for v in srv.client.info("commandstats").values())
        commands = calls_after - calls_before - 1
        print(f"  ingest of {rows} rows: {commands} commands")
        assert commands <= rows // 20, f"{commands} commands for {rows} rows"
    finally:
        srv.stop()


def test_cache_tier_from_the_cli():
    import json
    ds = unique("cached")
    data = write_npy("cached.npy", 500, 16)
    vstash(SHARED_YAML, "local_cached", "--dataset", ds, "ingest", data, check=0)
    outs = []
    for i in range(3):
        out = os.path.join(SCRATCH, f"{ds}_{i}.npy")
        p = vstash(SHARED_YAML, "local_cached", "--dataset", ds, "batch", "--size", "64", "--offset", "128",
                   "-o", out, check=0)
        assert "warning" not in p.stderr, p.stderr
        outs.append(np.load(out))
    assert all(np.array_equal(outs[0], o) for o in outs)
    assert np.array_equal(outs[0], np.load(data)[128:192])
    st = json.loads(vstash(SHARED_YAML, "local_cached", "--json", "stats", check=0).stdout)
    cache = st["extra"]["cache"]
    assert cache["available"] is True, cache
    assert cache["hits"] >= 2 and cache["misses"] >= 1 and cache["bytes"] > 0, cache
    # A write through vstash (another process) invalidates: the next batch is fresh.
    vstash(SHARED_YAML, "local_cached", "--dataset", ds, "delete", "--ids", "128", check=0)
    out = os.path.join(SCRATCH, f"{ds}_after.npy")
    vstash(SHARED_YAML, "local_cached", "--dataset", ds, "batch", "--size", "64", "--offset", "128", "-o", out,
           check=0)
    assert np.array_equal(np.load(out), np.load(data)[129:193])
    # The cache down: the command still succeeds, from the primary, with one warning.
    out = os.path.join(SCRATCH, f"{ds}_down.npy")
    p = vstash(SHARED_YAML, "local_cache_down", "--dataset", ds, "batch", "--size", "64", "--offset", "128",
               "-o", out, check=0)
    warnings = [l for l in p.stderr.splitlines() if "warning" in l]
    assert len(warnings) == 1 and "unreachable" in warnings[0], p.stderr
    assert np.array_equal(np.load(out), np.load(data)[129:193])


def test_cache_tier_two_processes():
    """One process writes through vstash (update, delete, insert), another reads shuffled
    batches through the cache tier under another profile of the same store (other `dataset:`,
    a memory tier): it never sees a row older than the last write that finished before its read
    began, also while the writes run."""
    import threading
    ds = unique("cached2p")
    base = yaml_profiles(SHARED_YAML)
    path = base["local"]["path"]
    cfg = write_yaml("cache2p.yaml", f"""profiles:
  cache: {json_inline(base["cache"])}
  local: {json_inline(base["local"])}
  writer: {json_inline(dict(base["local"], cache="cache"))}
  reader: {json_inline(dict(type="local", path=path, cache="cache", cache_memory_mb=8, dataset="other"))}
""")
    n, dim = 64, 4
    data = np.zeros((n, dim), dtype=np.float32)
    data[:, 0] = np.arange(n)
    src = os.path.join(SCRATCH, f"{ds}.npy")
    np.save(src, data)
    vstash(cfg, "writer", "--dataset", ds, "ingest", src, check=0)

    def read(profile, tag):
        out = os.path.join(SCRATCH, f"{ds}_{tag}.npy")
        vstash(cfg, profile, "--dataset", ds, "batch", "--size", str(n), "--shuffle", "--seed", "5", "-o", out,
               check=0)
        ids = [str(i) for i in np.load(out.replace(".npy", ".ids.npy"))]
        return dict(zip(ids, (tuple(r) for r in np.load(out).tolist())))

    def same_as_primary(tag):
        got = read("reader", tag)
        want = read("local", tag + "_primary")
        assert got == want, (tag, sorted(set(got.items()) ^ set(want.items()))[:4])
        return got

    same_as_primary("warm")
    same_as_primary("hit")
    vstash(cfg, "writer", "--dataset", ds, "update", "--id", "7", "--vector", "[70, 1, 2, 3]", check=0)
    assert same_as_primary("updated")["7"] == (70, 1, 2, 3)
    vstash(cfg, "writer", "--dataset", ds, "delete", "--ids", "9", check=0)
    assert "9" not in same_as_primary("deleted")
    vstash(cfg, "writer", "--dataset", ds, "insert", "--id", "new", "--vector", "[1, 2, 3, 4]", check=0)
    assert same_as_primary("inserted")["new"] == (1, 2, 3, 4)

    # Concurrent: row 7 takes the values 1..K in order while the reader reads; a read that
    # starts after update k finished sees k or later, and values never go back.
    done = [0]
    total = 10
    failure = []

    def writer():
        try:
            for k in range(1, total + 1):
                vstash(cfg, "writer", "--dataset", ds, "update", "--id", "7", "--vector", f"[{k}, 0, 0, 0]", check=0)
                done[0] = k
        except Exception as e:  # noqa: BLE001 - reported by the reader's thread
            failure.append(e)

    t = threading.Thread(target=writer)
    t.start()
    last = 0
    reads = 0
    deadline = time.monotonic() + 240
    while t.is_alive() and time.monotonic() < deadline:
        before = done[0]
        v = read("reader", f"c{reads}")["7"][0]
        reads += 1
        v = 0 if v == 70 else v
        assert v >= before, f"read {reads}: row 7 is {v} but update {before} had finished before the read began"
        assert v >= last, f"read {reads}: row 7 went back from {last} to {v}"
        last = v
    t.join(timeout=60)
    assert not failure, failure
    assert read("reader", "final")["7"][0] == total
    assert reads >= 2, reads


def test_cache_tier_memory_key_is_checked():
    base = yaml_profiles(SHARED_YAML)
    for value, why in (("-1", "not in 0..1048576"), ("2000000", "not in 0..1048576"), ("lots", "integer")):
        cfg = write_yaml("cachemem.yaml", f"""profiles:
  cache: {json_inline(base["cache"])}
  p: {json_inline(dict(base["local"], cache="cache"))[:-1]}, "cache_memory_mb": {value if value != "lots" else '"lots"'}}}
""")
        line = one_line_error(vstash(cfg, "p", "--dataset", "x", "stats", check=2).stderr)
        assert "cache_memory_mb" in line and why in line, line
    cfg = write_yaml("cachemem.yaml", f"""profiles:
  p: {json_inline(dict(base["local"], cache_memory_mb=8))}
""")
    line = one_line_error(vstash(cfg, "p", "stats", check=2).stderr)
    assert "cache_memory_mb" in line and "cache:" in line, line


def yaml_profiles(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)["profiles"]


def json_inline(d):
    import json
    return json.dumps(d)


def main():
    return 1 if run_tests(globals(), sys.argv[1:]) else 0


if __name__ == "__main__":
    sys.exit(main())
