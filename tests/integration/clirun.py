#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# What the plain-program CLI tests share (redis_test.py, redis_cluster_test.py): run vstash on a
# profile, check a one-line error, poll with a deadline, and run a module's test_* functions.
import os
import subprocess
import time
import traceback

BIN = os.environ["VSTASH_BIN"]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def npy_stream_pairs(raw):
    """The (data, labels) arrays of each batch of a `batch --stream` NPY stream (bytes)."""
    import io

    import numpy as np
    f, out = io.BytesIO(raw), []
    while f.tell() < len(raw):
        out.append((np.lib.format.read_array(f), np.lib.format.read_array(f)))
    return out

def vstash(config, profile, *args, check=None, timeout=300):
    cmd = [BIN, "--config", config, "--profile", profile, "--no-progress", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check is not None and p.returncode != check:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}, want {check}; stderr: {p.stderr.strip()}")
    return p


def one_line_error(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"want one line on stderr, got {len(lines)}: {stderr!r}"
    assert lines[0].startswith("vstash: error: "), lines[0]
    return lines[0]


def read_prefix(proc, n):
    """Reads up to N bytes of PROC's stdout (less only at its end), straight from the pipe, so
    that a later proc.communicate() reads the rest."""
    head = b""
    while len(head) < n:
        chunk = os.read(proc.stdout.fileno(), n - len(head))
        if not chunk:
            break
        head += chunk
    return head


def run_tests(namespace, argv):
    """Runs the test_* functions of NAMESPACE (a module's globals()) in name order. Arguments
    select tests by substring; "-WORD" leaves out the tests whose name has WORD. Prints
    "N passed, N failed"; returns the failure count."""
    tests = [(name, fn) for name, fn in sorted(namespace.items()) if name.startswith("test_") and callable(fn)]
    only = [a for a in argv if not a.startswith("-")]
    without = [a[1:] for a in argv if a.startswith("-")]
    passed = failed = 0
    for name, fn in tests:
        if (only and not any(o in name for o in only)) or any(w in name for w in without):
            continue
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"PASS {name} ({time.monotonic() - t0:.1f} s)", flush=True)
        except Exception:  # noqa: BLE001 - report every failure and go on
            failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return failed
