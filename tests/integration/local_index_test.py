# SPDX-License-Identifier: MIT
# The local store's HNSW index through the built binary (issue 16 line 3):
#   - ingest above hnsw_min_rows builds it (stats names it), the file lies beside the store;
#   - query uses it (a narrow --ef loses neighbours that --exact finds), with recall@10 >= 0.95
#     at the defaults and the exact scan's scores for the rows it returns;
#   - a filter matching a quarter of the rows still returns k matching hits, equal to the
#     exact filtered answer's ids;
#   - after an insert the index is stale: stats says so and queries equal --exact; `vstash
#     index` rebuilds it; --no-index defers it.
# Run: VSTASH_BIN=build/vstash /usr/bin/python3 tests/integration/local_index_test.py
import json
import os
import subprocess
import tempfile
import unittest

import numpy as np

VSTASH = os.environ.get("VSTASH_BIN", "vstash")
ROWS, DIM, MIN_ROWS = 6000, 32, 2000


class LocalIndexTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="vstash-index-")
        root = cls.tmp.name
        cls.db = os.path.join(root, "store", "local.db")
        config = os.path.join(root, "vstash.yaml")
        with open(config, "w") as f:
            f.write(f"default: local\nprofiles:\n  local:\n    type: local\n    path: {cls.db}\n"
                    f"    hnsw_min_rows: {MIN_ROWS}\n")
        cls.env = dict(os.environ, VSTASH_CONFIG=config, VSTASH_NO_PROGRESS="1")
        for k in ("VSTASH_PROFILE", "VSTASH_DATASET", "VSTASH_JSON"):
            cls.env.pop(k, None)
        rng = np.random.default_rng(16)
        cls.x = rng.standard_normal((ROWS, DIM)).astype(np.float32)
        cls.q = rng.standard_normal((100, DIM)).astype(np.float32)
        cls.xfile = os.path.join(root, "x.npy")
        cls.qfile = os.path.join(root, "q.npy")
        np.save(cls.xfile, cls.x)
        np.save(cls.qfile, cls.q)
        cls.meta = os.path.join(root, "m.jsonl")
        with open(cls.meta, "w") as f:
            for i in range(ROWS):
                f.write(json.dumps({"g": i % 4, "r": i % 100}) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_vstash(self, *args):
        p = subprocess.run([VSTASH, *args], env=self.env, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError(f"vstash {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def ingest(self, name, *extra):
        return self.run_vstash("--dataset", name, "ingest", self.xfile, "--metadata", self.meta,
                               "--metric", "euclidean", *extra)

    def index_state(self, name):
        return json.loads(self.run_vstash("stats", "--json").stdout)["extra"]["index"][name]

    def answers(self, name, *extra):
        out = self.run_vstash("--dataset", name, "query", "--queries", self.qfile, *extra).stdout
        return [json.loads(line)["hits"] for line in out.splitlines()]

    def recall(self, got, want):
        found = sum(len({h["index"] for h in a} & {h["index"] for h in b}) for a, b in zip(got, want))
        return found / sum(len(b) for b in want)

    def test_index_is_built_used_and_exact_in_its_scores(self):
        p = self.ingest("built")
        self.assertIn("built the hnsw index", p.stderr)
        self.assertNotIn("stale", self.index_state("built"))
        self.assertTrue(self.index_state("built").startswith("hnsw"))
        self.assertTrue(os.path.exists(self.db + ".segments/1.hnsw") or
                        any(f.endswith(".hnsw") for f in os.listdir(self.db + ".segments")))
        exact = self.answers("built", "--exact")
        ann = self.answers("built")
        self.assertGreaterEqual(self.recall(ann, exact), 0.95)
        # The graph's candidates are rescored exactly: a row found by both has one score.
        for hits, truth in zip(ann, exact):
            self.assertEqual(len(hits), 10)
            scores = {h["index"]: h["score"] for h in truth}
            for h in hits:
                if h["index"] in scores:
                    self.assertEqual(h["score"], scores[h["index"]])
            self.assertEqual(hits, sorted(hits, key=lambda h: (h["score"], h["index"])))
        # --ef 10 narrows the search: the index answers, and misses some exact neighbours.
        self.assertLess(self.recall(self.answers("built", "--ef", "10"), exact), 1.0)

    def test_filtered_query_returns_k_matching_hits(self):
        self.ingest("filtered")
        flt = json.dumps({"g": 1})
        ann = self.answers("filtered", "--filter", flt)
        exact = self.answers("filtered", "--filter", flt, "--exact")
        for hits in ann:
            self.assertEqual(len(hits), 10)
            self.assertTrue(all(h["metadata"]["g"] == 1 for h in hits))
        self.assertGreaterEqual(self.recall(ann, exact), 0.95)
        # A selective filter (60 rows of 6000) is answered by the exact scan over its matches.
        rare = json.dumps({"r": 5})
        self.assertEqual(self.answers("filtered", "--filter", rare), self.answers("filtered", "--filter", rare, "--exact"))

    def test_stale_after_insert_then_rebuilt(self):
        self.ingest("stale")
        self.run_vstash("--dataset", "stale", "insert", "--id", "extra",
                        "--vector", json.dumps([0.0] * DIM))
        self.assertIn("stale", self.index_state("stale"))
        self.assertEqual(self.answers("stale"), self.answers("stale", "--exact"))
        p = self.run_vstash("index", "stale")
        self.assertIn("built the hnsw index", p.stdout)
        self.assertNotIn("stale", self.index_state("stale"))
        self.assertIn("current", self.run_vstash("index", "stale").stdout)

    def test_no_index_defers_the_build(self):
        self.ingest("deferred", "--no-index")
        self.assertTrue(self.index_state("deferred").startswith("none"))
        self.assertEqual(self.answers("deferred"), self.answers("deferred", "--exact"))
        self.run_vstash("index", "deferred")
        self.assertTrue(self.index_state("deferred").startswith("hnsw"))


if __name__ == "__main__":
    unittest.main()
