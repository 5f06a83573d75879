#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Input from someone who does not mean well, through the binary on a local store (issue 14,
lines 1-3 and 6-8): JSON nested beyond the limit, /dev/zero where a small input is expected,
numbers that size threads and buffers, stdout that cannot be written, ann-benchmarks files
named by path, hostile dataset names, empty files, and one rule for missing ids. Each case
must end in exit 2 (or the code README gives) with one line naming the input and the limit,
never a crash, raw library text or a runaway allocation.

Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/hostile_input_test.py [-v]
"""
import json
import os
import subprocess
import sys
import unittest

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_test import CliTest  # noqa: E402  (the per-test store, env and helpers)

# Bounded reads must stop long before this; before the fix, /dev/zero grew past 1.5 GB in 20 s.
QUICK = 60


def nested_filter(levels):
    return '{"$and":[' * levels + '{"a":1}' + "]}" * levels


def nested_object(levels):
    return '{"a":' * levels + "1" + "}" * levels


class DeepJson(CliTest):
    def setUp(self):
        super().setUp()
        self.make_dataset("d", n=20)

    def test_deep_filter_is_refused_with_the_limit(self):
        self.write("deep.json", nested_filter(9000))
        for args in (("query", "--dataset", "d", "[1,2,3,4]", "--filter", "@deep.json"),
                     ("delete", "--dataset", "d", "--filter", "@deep.json", "--dry-run"),
                     ("query", "--dataset", "d", "[1,2,3,4]", "--filter", nested_filter(100))):
            self.fails(2, *args, contains=["--filter", "64 levels"])

    def test_filter_at_the_limit_still_works(self):
        # 63 $and levels plus the leaf object: 64 levels of JSON objects and arrays... 2 per $and.
        r = self.ok_json("query", "--dataset", "d", "[1,2,3,4]", "--filter", nested_filter(31))
        self.assertEqual(len(r["hits"]), 0)  # {"a": 1} matches nothing; what matters is exit 0

    def test_deep_metadata_is_refused_and_nothing_is_written(self):
        before = self.snapshot()
        deep = nested_object(60000)
        self.write("deep.json", deep)
        for metadata in ("@deep.json", nested_object(100)):
            self.fails(2, "insert", "--dataset", "d", "--id", "x", "--vector", "[1,2,3,4]", "--metadata", metadata,
                       contains=["--metadata", "64 levels"])
            self.fails(2, "update", "--dataset", "d", "--id", "0", "--metadata", metadata,
                       contains=["--metadata", "64 levels"])
        with open(self.path("deep.jsonl"), "w") as f:
            f.write(json.dumps({"id": "a", "vector": [1, 2, 3, 4]})[:-1] + ', "metadata": ' + deep + "}\n")
        self.fails(2, "ingest", "deep.jsonl", "--dataset", "j", contains=["deep.jsonl:1", "64 levels"])
        self.assertEqual(self.snapshot(), before)  # no empty dataset "j" left behind

    def test_deep_yaml_profile_is_refused(self):
        self.write("deep.yaml", "profiles:\n  x:\n    type: local\n    path: " + "[" * 100000 + "]" * 100000 + "\n")
        self.fails(2, "--config", "deep.yaml", "--profile", "x", "stats", contains=["deep.yaml", "nested deeper"])


class UnboundedReads(CliTest):
    def setUp(self):
        super().setUp()
        self.make_dataset("d", n=20)

    def test_dev_zero_arguments_are_refused_with_the_bound(self):
        cases = [
            (("query", "--dataset", "d", "[1,2,3,4]", "--filter", "@/dev/zero"), "--filter"),
            (("insert", "--dataset", "d", "--id", "z", "--vector", "@/dev/zero"), "--vector"),
            (("insert", "--dataset", "d", "--id", "z", "--vector", "[1,2,3,4]", "--metadata", "@/dev/zero"),
             "--metadata"),
        ]
        for args, flag in cases:
            self.fails(2, *args, contains=[flag, "/dev/zero", "16 MiB"])

    def test_jsonl_linked_to_dev_zero_is_refused_with_the_bound(self):
        os.symlink("/dev/zero", self.path("z.jsonl"))
        self.fails(2, "ingest", "z.jsonl", "--dataset", "z", contains=["z.jsonl:1", "64 MiB"])
        self.fails(2, "ingest", "d.npy", "--dataset", "z2", "--metadata", "z.jsonl", contains=["z.jsonl:1", "64 MiB"])

    def test_config_that_is_a_device_is_refused(self):
        self.fails(2, "--config", "/dev/zero", "stats", contains=["/dev/zero", "not a regular file"])


class BadNumbers(CliTest):
    def setUp(self):
        super().setUp()
        self.make_dataset("d", n=20)

    def test_number_out_of_range_in_a_filter(self):
        line = self.fails(2, "query", "--dataset", "d", "[1,2,3,4]", "--filter", '{"n":{"$gt":1e400}}',
                          contains=["--filter", "1e400"])
        self.assertNotIn("json.exception", line)

    def test_workers_and_sizes_are_bounded(self):
        for n in ("2000000000", "100000", "-1"):
            self.fails(2, "batch", "--dataset", "d", "--size", "4", "--stream", "--workers", n, "-o", "b{}.npy",
                       contains=["--workers", "64"])
        self.fails(2, "batch", "--dataset", "d", "--size", "2000000000", "-o", "b.npy", contains=["--size"])
        self.fails(2, "query", "--dataset", "d", "[1,2,3,4]", "-k", "2000000000", contains=["-k"])
        self.fails(2, "export", "--dataset", "d", "-o", "e.npy", "--block-rows", "0", contains=["--block-rows"])
        self.fails(2, "ingest", "d.npy", "--dataset", "e", "--writers", "100000", contains=["--writers", "64"])
        self.assertEqual(self.files_in_dir().count("b000000.npy"), 0)


class StdoutErrors(CliTest):
    def setUp(self):
        super().setUp()
        self.make_dataset("d", n=20)

    def run_to(self, target, *args):
        with open(target, "w") as out:
            return subprocess.run([self.vstash_path(), *args], cwd=self.dir, env=self.env, stdout=out,
                                  stderr=subprocess.PIPE, text=True)

    def vstash_path(self):
        return os.environ["VSTASH_BIN"]

    def test_full_disk_on_stdout_is_an_error(self):
        np.save(self.path("q.npy"), np.ones((3, 4), np.float32))
        for args in (("stats", "--json"), ("stats",), ("query", "--dataset", "d", "--queries", "q.npy"),
                     ("batch", "--dataset", "d", "--size", "4", "--stream", "-o", "-")):
            r = self.run_to("/dev/full", *args)
            self.assertEqual(r.returncode, 1, f"{args}: {r.stderr}")
            self.assertEqual(r.stderr.splitlines(), ["vstash: error: stdout: write failed: No space left on device"],
                             args)

    def test_closed_pipe_ends_quietly_even_when_sigpipe_is_ignored(self):
        # A parent that ignores SIGPIPE (Python, some CI runners) hands that on: the write then
        # fails with EPIPE, and vstash must still end as quietly as `yes | head` does.
        np.save(self.path("big.npy"), np.ones((20000, 4), np.float32))
        self.ok("ingest", "big.npy", "--dataset", "big")
        for trap in ("", "trap '' PIPE; "):
            script = (f"{trap}'{self.vstash_path()}' batch --dataset big --size 64 --stream -o - | head -c 10 "
                      ">/dev/null; echo \"status=${PIPESTATUS[0]}\"")
            r = subprocess.run(["bash", "-c", script], cwd=self.dir, env=self.env, capture_output=True, text=True,
                               timeout=QUICK)
            self.assertIn("status=141", r.stdout, f"{trap!r}: {r.stdout} {r.stderr}")
            self.assertEqual(r.stderr, "", trap)


class AnnBenchmarksMetric(CliTest):
    def test_named_train_path_keeps_the_files_distance(self):
        rng = np.random.default_rng(3)
        with h5py.File(self.path("annb-euclidean.hdf5"), "w") as f:
            f.attrs["distance"] = "euclidean"
            f["train"] = rng.normal(size=(50, 8)).astype(np.float32)
            f["test"] = rng.normal(size=(5, 8)).astype(np.float32)
            f["neighbors"] = np.zeros((5, 10), np.int32)
        self.ok("ingest", "annb-euclidean.hdf5:/train", "--dataset", "named")
        self.ok("ingest", "annb-euclidean.hdf5", "--dataset", "bare")
        metrics = {d["name"]: d["metric"] for d in self.ok_json("stats")["datasets"]}
        self.assertEqual(metrics, {"named": "euclidean", "bare": "euclidean"})
        # --metric still wins over the file.
        self.ok("ingest", "annb-euclidean.hdf5:/test", "--dataset", "forced", "--metric", "dot")
        metrics = {d["name"]: d["metric"] for d in self.ok_json("stats")["datasets"]}
        self.assertEqual(metrics["forced"], "dot")


class NamesEmptyFilesAndMissingIds(CliTest):
    def test_hostile_dataset_names_are_refused(self):
        np.save(self.path("d.npy"), np.ones((3, 4), np.float32))
        self.fails(2, "ingest", "d.npy", "--dataset", "a\tb", contains=["control character"])
        self.fails(2, "ingest", "d.npy", "--dataset", "x\x1b[31m", contains=["control character"])
        self.fails(2, "ingest", "d.npy", "--dataset", "n" * 10000, contains=["255"])
        self.ok("ingest", "d.npy", "--dataset", "n" * 255)
        self.assertEqual([d["name"] for d in self.ok_json("stats")["datasets"]], ["n" * 255])

    def test_empty_npy_ingests_and_exports(self):
        np.save(self.path("e.npy"), np.zeros((0, 4), np.float32))
        r = self.ok("ingest", "e.npy", "--dataset", "e")
        self.assertNotIn("nan", r.stdout.lower())
        self.assertEqual(self.ok_json("ingest", "e.npy", "--dataset", "e2")["mb_per_second"], 0)
        self.ok("export", "--dataset", "e", "-o", "out.npy")
        out = np.load(self.path("out.npy"))
        self.assertEqual((out.shape, out.dtype), ((0, 4), np.float32))

    def test_a_missing_id_is_exit_4_for_get_update_and_delete(self):
        self.make_dataset("d", n=5)
        self.fails(4, "get", "--dataset", "d", "nope", contains=['"nope"'])
        self.fails(4, "update", "--dataset", "d", "--id", "nope", "--metadata", "{}", contains=['"nope"'])
        self.fails(4, "delete", "--dataset", "d", "--id", "nope", contains=['"nope"', "--ignore-missing"])
        # The present ids are deleted, the missing one is still reported.
        self.fails(4, "delete", "--dataset", "d", "--ids", "1,nope", "--yes", contains=['"nope"'])
        self.fails(4, "get", "--dataset", "d", "1")
        res = self.ok_json("delete", "--dataset", "d", "--ids", "2,nope", "--yes", "--ignore-missing")
        self.assertEqual((res["deleted"], res["missing"]), (1, ["nope"]))


class UnresolvableHost(CliTest):
    def test_a_name_that_does_not_resolve_is_retryable_like_a_refused_connection(self):
        # .invalid never resolves (RFC 2606); the answer comes from the local resolver at once.
        host = "no-such-host.invalid"
        self.write("dns.yaml", f"""profiles:
  pg:
    type: pgvector
    host: {host}
    database: x
    user: x
    password: hunter2-S3CRET-pw
  redis:
    type: redis
    host: {host}
  qdrant:
    type: qdrant
    host: {host}
    max_attempts: 2
  pinecone:
    type: pinecone
    api_key: hunter2-S3CRET-pw
    control_host: https://{host}
    index_name: x
    max_attempts: 2
""")
        for profile in ("pg", "redis", "qdrant", "pinecone"):
            self.fails(3, "--config", "dns.yaml", "--profile", profile, "stats", contains=[host])


if __name__ == "__main__":
    unittest.main()
