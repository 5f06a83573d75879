#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Interop of vstash's array files with numpy and h5py, both directions:
#  - files numpy/h5py write (tests/fixtures/make_io_fixtures.py: NPY 1.0-3.0, every dtype, both
#    byte orders, C and Fortran order; HDF5 groups, chunked+gzip, strings, attributes) are read
#    by vstash_iotool (src/io) and written back as NPY and HDF5, which numpy/h5py read: dtype,
#    shape and bytes must be identical (NaN payloads, -0.0 and subnormals included);
#  - files vstash must refuse (object/pickled, complex, structured, a missing dataset, a group,
#    a non-HDF5 file, an unavailable filter) fail with exit code 2 and a message naming them;
#  - the vstash binary ingests NPY/HDF5 into a scratch local store and exports it back.
# Env: VSTASH_BIN, VSTASH_IOTOOL, VSTASH_SOURCE_DIR, VSTASH_TEST_STATE (all set by CTest).
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

SRC = os.environ.get("VSTASH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "fixtures"))
import make_io_fixtures  # noqa: E402

IOTOOL = os.environ["VSTASH_IOTOOL"]
VSTASH = os.environ["VSTASH_BIN"]
WORK = os.path.join(os.environ.get("VSTASH_TEST_STATE", "/tmp"), f"io-interop-{os.getpid()}")

failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def run(cmd, stdin=None, env=None):
    return subprocess.run(cmd, capture_output=True, text=True, input=stdin, env=env)


def iotool(*args):
    return run([IOTOOL, *args])


def reference(entry):
    """The array as numpy/h5py read it, in native byte order and C order."""
    spec = entry["spec"]
    if spec.endswith(".npy"):
        a = np.load(spec)
    else:
        f, ds = spec.rsplit(":", 1)
        with h5py.File(f, "r") as h:
            a = h[ds][()]
            a = np.asarray(a)
    # copy(order="C") rather than ascontiguousarray, which turns a 0-d array into 1-d.
    return a.astype(a.dtype.newbyteorder("=")).copy(order="C")


def same_array(got, want, what):
    check(got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}")
    check(got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}")
    check(got.copy(order="C").tobytes() == want.tobytes(), f"{what}: bytes differ")


def read_h5(spec):
    f, ds = spec.rsplit(":", 1)
    with h5py.File(f, "r") as h:
        return np.asarray(h[ds][()])


def numeric_entries(manifest, out):
    for i, e in enumerate(manifest):
        if "dtype" not in e:
            continue
        spec, name = e["spec"], f"#{i} {e['spec']}"
        info = iotool("info", spec)
        check(info.returncode == 0, f"{name}: info failed: {info.stderr.strip()}")
        if info.returncode != 0:
            continue
        meta = json.loads(info.stdout)
        check(meta["dtype"] == e["dtype"], f"{name}: dtype {meta['dtype']} != {e['dtype']}")
        check(meta["shape"] == e["shape"], f"{name}: shape {meta['shape']} != {e['shape']}")
        for k, v in e.get("attributes", {}).items():
            check(meta["attributes"].get(k) == v, f"{name}: attribute {k} = {meta['attributes'].get(k)} != {v}")
        want = reference(e)
        # vstash -> NPY -> numpy
        npy = os.path.join(out, f"c{i}.npy")
        r = iotool("copy", spec, npy)
        check(r.returncode == 0, f"{name}: copy to npy failed: {r.stderr.strip()}")
        if r.returncode == 0:
            same_array(np.load(npy), want, f"{name} -> npy")
        # vstash -> HDF5 -> h5py
        h5 = os.path.join(out, f"c{i}.h5")
        r = iotool("copy", spec, f"{h5}:/g/x")
        check(r.returncode == 0, f"{name}: copy to h5 failed: {r.stderr.strip()}")
        if r.returncode == 0:
            same_array(read_h5(f"{h5}:/g/x"), want, f"{name} -> h5")
        for path in (npy, h5):
            if os.path.exists(path):
                os.remove(path)


def string_entries(manifest, out):
    for i, e in enumerate(manifest):
        if "strings" not in e:
            continue
        name = f"#{i} {e['spec']}"
        r = iotool("strings", e["spec"])
        check(r.returncode == 0 and json.loads(r.stdout) == e["strings"],
              f"{name}: strings {r.stdout.strip()} {r.stderr.strip()} != {e['strings']}")
        h5 = os.path.join(out, f"s{i}.h5")
        r = iotool("copy", e["spec"], f"{h5}:/ids")
        check(r.returncode == 0, f"{name}: copy to h5 failed: {r.stderr.strip()}")
        if r.returncode == 0:
            with h5py.File(h5, "r") as f:
                check(h5py.check_string_dtype(f["ids"].dtype) is not None, f"{name}: h5 ids not strings")
                check([s.decode() for s in f["ids"][()]] == e["strings"], f"{name}: h5 ids differ")
        npy = os.path.join(out, f"s{i}.npy")
        r = iotool("copy", e["spec"], npy)
        check(r.returncode == 0 and np.load(npy).tolist() == e["strings"], f"{name}: npy ids differ")


def error_entries(manifest):
    for i, e in enumerate(manifest):
        if "error" not in e:
            continue
        name = f"#{i} {e['spec']}"
        r = iotool("info", e["spec"])
        check(r.returncode == 2, f"{name}: exit {r.returncode}, expected 2 ({r.stderr.strip()})")
        check(e["error"] in r.stderr, f"{name}: message {r.stderr.strip()!r} lacks {e['error']!r}")
        check(e["file"] in r.stderr, f"{name}: message {r.stderr.strip()!r} does not name the file")
        check(r.stderr.count("\n") == 1, f"{name}: message is not one line")


def blocks(manifest, out):
    spec = next(e["spec"] for e in manifest if e["spec"].endswith("/deep/group/chunked"))
    npy = os.path.join(out, "blocks.npy")
    r = iotool("blocks", spec, "1024", npy)
    check(r.returncode == 0 and json.loads(r.stdout) == [1024, 1024, 952],
          f"blocks of 1024 from {spec}: {r.stdout.strip()} {r.stderr.strip()}")
    same_array(np.load(npy), read_h5(spec), "block-wise read of a chunked gzip dataset")
    fortran = next(e["spec"] for e in manifest if e["spec"].endswith("float64_be_F_v2.npy"))
    r = iotool("blocks", fortran, "2", npy)
    check(r.returncode == 0 and json.loads(r.stdout) == [2, 2, 2, 1], f"blocks of 2 from {fortran}: {r.stdout}")
    same_array(np.load(npy), reference({"spec": fortran}), "block-wise read of a big-endian Fortran file")


def write_arrays(out):
    data = make_io_fixtures.values("float32", (5, 3), seed=3)
    labels = np.arange(5, dtype=np.int64) * 7
    ids = np.array(["a", "b", "é", "d", "e"])
    for name, a in (("data", data), ("labels", labels), ("ids", ids)):
        np.save(os.path.join(out, f"in_{name}.npy"), a)
    args = [f"data={out}/in_data.npy", f"labels={out}/in_labels.npy", "--ids", f"{out}/in_ids.npy"]
    h5 = os.path.join(out, "multi.h5")
    r = iotool("write", h5, *args, "--attrs", '{"epoch": 3, "model": "m", "loss": 0.25, "ok": true, "sizes": [1, 2]}')
    check(r.returncode == 0, f"write {h5}: {r.stderr.strip()}")
    with h5py.File(h5, "r") as f:
        check(sorted(f.keys()) == ["data", "ids", "labels"], f"{h5}: datasets {sorted(f.keys())}")
        same_array(f["data"][()], data, "write_arrays h5 data")
        same_array(f["labels"][()], labels, "write_arrays h5 labels")
        check([s.decode() for s in f["ids"][()]] == ids.tolist(), "write_arrays h5 ids")
        check(f.attrs["epoch"] == 3 and f.attrs["model"] == "m" and f.attrs["loss"] == 0.25, "h5 root attrs")
        check(bool(f.attrs["ok"]) is True and list(f.attrs["sizes"]) == [1, 2], "h5 root attrs (bool, list)")
    npy = os.path.join(out, "multi.npy")
    r = iotool("write", npy, *args)
    check(r.returncode == 0, f"write {npy}: {r.stderr.strip()}")
    same_array(np.load(npy), data, "write_arrays npy data")
    same_array(np.load(os.path.join(out, "multi.labels.npy")), labels, "write_arrays npy labels")
    check(np.load(os.path.join(out, "multi.ids.npy")).tolist() == ids.tolist(), "write_arrays npy ids")
    # A write that fails (a file that is not HDF5 in the way) leaves it as it was, and no temp.
    fake = os.path.join(out, "fake.h5")
    with open(fake, "w") as f:
        f.write("precious, not HDF5")
    before = sorted(os.listdir(out))
    r = iotool("write", f"{fake}:/grp", *args)
    check(r.returncode == 2 and "not an HDF5 file" in r.stderr, f"write into a non-HDF5 file: {r.stderr.strip()}")
    check(open(fake).read() == "precious, not HDF5" and sorted(os.listdir(out)) == before,
          "failed write changed the directory")


def through_the_binary(manifest, out):
    """ingest (NPY, HDF5, labels, ids, metadata) into a scratch local store, then export."""
    cfg = os.path.join(out, "vstash.yaml")
    with open(cfg, "w") as f:
        f.write(f"profiles:\n  local:\n    type: local\n    path: {out}/store.db\n")
    env = dict(os.environ, VSTASH_CONFIG=cfg)
    env.pop("VSTASH_PROFILE", None)

    def vstash(*args):
        return run([VSTASH, *args], env=env)

    cases = [e for e in manifest if "dtype" in e and e.get("shape") and len(e["shape"]) >= 2 and e["shape"][0] > 0]
    picked = [e for e in cases if any(e["spec"].endswith(s) for s in (
        "float32_be_F_v1.npy", "float16_le_C_v3.npy", "int16_be_C_v2.npy", "uint8_le_F_v1.npy",
        "float64_le_C_v1.npy", "bool_le_C_v1.npy", "uint64_be_F_v3.npy", "wide4d.npy", ":/be/int32",
        ":/deep/group/chunked", ":/le/float16"))]
    check(len(picked) >= 11, f"picked {len(picked)} ingest cases")
    for n, e in enumerate(picked):
        want = reference(e)
        rows = want.shape[0]
        ds = f"interop{n}"
        ingest = [e["spec"], "--dataset", ds, "--no-progress", "--json"]
        if dtype_is_float(want.dtype) and not np.isfinite(want).all():
            # NaN/Inf rows are refused at ingest (bad input); ingest the finite rows.
            finite = want[np.isfinite(want.reshape(rows, -1)).all(axis=1)]
            path = os.path.join(out, f"finite{n}.npy")
            np.save(path, finite)
            ingest[0], want, rows = path, finite, finite.shape[0]
        labels = np.arange(rows, dtype=np.int32)[::-1].copy()
        ids = np.array([f"id-{n}-{i}" for i in range(rows)])
        np.save(os.path.join(out, "labels.npy"), labels)
        np.save(os.path.join(out, "ids.npy"), ids)
        with open(os.path.join(out, "meta.jsonl"), "w") as f:
            for i in range(rows):
                f.write(json.dumps({"row": i, "tag": "é" if i % 2 else "x"}) + "\n")
        r = vstash("ingest", *ingest, "--labels", f"{out}/labels.npy", "--ids", f"{out}/ids.npy",
                   "--metadata", f"{out}/meta.jsonl")
        check(r.returncode == 0, f"ingest {e['spec']}: exit {r.returncode}: {r.stderr.strip()}")
        if r.returncode != 0:
            continue
        for target in (f"{out}/exp{n}.npy", f"{out}/exp{n}.h5"):
            r = vstash("--dataset", ds, "export", "-o", target, "--json")
            check(r.returncode == 0, f"export {ds} to {target}: {r.stderr.strip()}")
            if r.returncode != 0:
                continue
            if target.endswith(".npy"):
                got = np.load(target)
                got_labels = np.load(target.replace(".npy", ".labels.npy"))
                got_ids = np.load(target.replace(".npy", ".ids.npy")).tolist()
            else:
                with h5py.File(target, "r") as f:
                    got, got_labels = f["data"][()], f["labels"][()]
                    got_ids = [s.decode() for s in f["ids"][()]]
            same_array(got, want, f"ingest+export {e['spec']} -> {target}")
            same_array(got_labels, labels, f"labels of {e['spec']} -> {target}")
            check(got_ids == ids.tolist(), f"ids of {e['spec']} -> {target}")
            meta = os.path.join(out, f"exp{n}.metadata.jsonl")
            with open(meta) as f:
                lines = [json.loads(line) for line in f]
            check(lines == [{"row": i, "tag": "é" if i % 2 else "x"} for i in range(rows)],
                  f"metadata of {e['spec']} -> {meta}")
    # ann-benchmarks HDF5: ingests /train with its metric.
    ann = next(e for e in manifest if e["spec"].endswith("ann.h5:/train"))
    r = vstash("ingest", ann["file"], "--dataset", "ann", "--no-progress", "--json")
    check(r.returncode == 0, f"ingest ann-benchmarks file: {r.stderr.strip()}")
    r = vstash("--dataset", "ann", "export", "-o", f"{out}/ann.npy")
    check(r.returncode == 0, f"export ann: {r.stderr.strip()}")
    if r.returncode == 0:
        same_array(np.load(f"{out}/ann.npy"), reference(ann), "ann-benchmarks /train")
    # Bad input through the binary: exit 2, the message names the file, the store is unchanged.
    before = vstash("stats", "--json").stdout
    for e in manifest:
        if "error" in e and not e["spec"].endswith("/lzf"):
            r = vstash("ingest", e["spec"], "--dataset", "bad", "--no-progress")
            check(r.returncode == 2 and e["error"] in r.stderr and r.stderr.startswith("vstash: error: "),
                  f"ingest {e['spec']}: exit {r.returncode}: {r.stderr.strip()}")
    check(vstash("stats", "--json").stdout == before, "refused ingests changed the store")


def dtype_is_float(dt):
    return np.dtype(dt).kind == "f"


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    manifest = make_io_fixtures.main(os.path.join(WORK, "fixtures"))
    out = os.path.join(WORK, "out")
    os.makedirs(out)
    numeric_entries(manifest, out)
    string_entries(manifest, out)
    error_entries(manifest)
    blocks(manifest, out)
    write_arrays(out)
    through_the_binary(manifest, out)
    print(f"{checks} checks, {len(failures)} failed")
    if failures:
        return 1
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
