#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpus of every fuzz target to tests/fuzz/corpus/<target>/ (checked in; run
# again after changing a seed). Seeds are valid inputs of each parser plus the edge cases it
# must refuse cleanly: truncation, overflow, deep nesting, wrong types. Also writes the
# hand-made regression inputs (REGRESSIONS) to tests/fuzz/regressions/<target>/, next to the
# inputs the fuzzer found, which are copied there by hand. Standard library only.
import base64
import json
import pathlib
import shutil
import struct

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE / "corpus"
CONFIGS = pathlib.Path(__file__).resolve().parents[2] / "configs"


def npy(descr, shape, fortran=False, data=b"", major=1, raw_dict=None):
    """An NPY file: preamble, dict padded to 64 bytes, then data."""
    if raw_dict is None:
        shape_text = "(%d,)" % shape[0] if len(shape) == 1 else "(%s)" % ", ".join(map(str, shape))
        raw_dict = "{'descr': %r, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape_text)
    pre = 10 if major == 1 else 12
    body = raw_dict.encode()
    text = body + b" " * (-(pre + len(body) + 1) % 64) + b"\n"
    size = struct.pack("<H", len(text)) if major == 1 else struct.pack("<I", len(text))
    return b"\x93NUMPY" + bytes([major, 0]) + size + text + data


def vsa1(dtype_code, shape, payload):
    """A rowcodec blob (backends/common/rowcodec.hpp), base64 as stored in payloads."""
    raw = b"VSA1" + bytes([dtype_code, len(shape)]) + b"".join(struct.pack("<q", d) for d in shape) + payload
    return base64.b64encode(raw).decode()


def deep(open_, close, inner, levels):
    return open_ * levels + inner + close * levels


def npy_seeds():
    f4 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    return {
        "f4_2x3.npy": npy("<f4", (2, 3), data=f4),
        "f8_be_fortran.npy": npy(">f8", (2, 1), fortran=True, data=struct.pack(">2d", 1, 2)),
        "u1_vector.npy": npy("|u1", (4,), data=b"\x00\x01\x02\xff"),
        "b1_scalar.npy": npy("|b1", (), data=b"\x01"),
        "f2_empty.npy": npy("<f2", (0, 8)),
        "unicode_labels.npy": npy("<U3", (2,), data="abcdef".encode("utf-32-le")),
        "bytes_labels.npy": npy("|S2", (2,), data=b"abcd"),
        "version2.npy": npy("<i8", (1,), data=struct.pack("<q", 7), major=2),
        "version3.npy": npy("<i4", (1,), data=struct.pack("<i", 7), major=3),
        "python2_long.npy": npy("<f4", None, raw_dict="{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }",
                                data=struct.pack("<2f", 1, 2)),
        "huge_shape.npy": npy("<f8", (2**62, 2**62, 2**62)),
        "huge_dim.npy": npy("<f4", (9223372036854775807,)),
        "negative_dim.npy": npy("<f4", None, raw_dict="{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }"),
        "deep_tuple.npy": npy("<f4", None, raw_dict="{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
                              % deep("(", ")", "1", 64)),
        "object.npy": npy("|O", (1,)),
        "structured.npy": npy(None, None, raw_dict="{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"),
        "complex.npy": npy("<c8", (1,)),
        "datetime.npy": npy("<M8[ns]", (1,)),
        "missing_shape.npy": npy(None, None, raw_dict="{'descr': '<f4', 'fortran_order': False, }"),
        "truncated_data.npy": npy("<f4", (2, 3), data=f4[:7]),
        "trailing_data.npy": npy("<f4", (1,), data=f4),
        "header_past_end.npy": b"\x93NUMPY\x01\x00\xff\xff{'descr'",
        "bad_magic.npy": b"\x93NUMPZ\x01\x00\x10\x00",
        "short_preamble.npy": b"\x93NUM",
    }


def filter_seeds():
    docs = {
        "shorthand.json": {"genre": "drama"},
        "range.json": {"year": {"$gte": 2019, "$lt": 2024}},
        "or_in_exists.json": {"$or": [{"tag": {"$in": ["a", "b"]}}, {"draft": {"$exists": False}}]},
        "every_op.json": {"a": {"$eq": 1, "$ne": "x", "$gt": 0.5, "$lte": 1e9},
                          "b": {"$in": [1, 2.5, "3"], "$nin": ["z"]}, "c": {"$exists": True},
                          "$and": [{"d": True}, {"$or": [{"e": -1}, {"f": {"$lt": -1e-300}}]}]},
        "empty.json": {},
        "dotted_key.json": {"a.b": 1, "": 2},
        "bad_operator.json": {"year": {"$regex": "x"}},
        "wrong_types.json": {"year": {"$gt": "2019"}, "tag": {"$in": []}, "x": {"$exists": 1}},
        "nested_object.json": {"a": {"b": 1}},
        "array_top.json": [{"a": 1}],
        "big_numbers.json": {"n": {"$eq": 18446744073709551615}, "m": {"$gt": -9223372036854775808}},
        "label.json": {"$label": {"$in": [3, 5.5, "x"], "$ne": True, "$gte": -1},
                       "$or": [{"label": 3}, {"$label": False}]},
        "label_exists.json": {"$label": {"$exists": True}},
    }
    seeds = {k: json.dumps(v).encode() for k, v in docs.items()}
    seeds["out_of_range.json"] = b'{"n": {"$gt": 1e400}}'
    seeds["duplicate_keys.json"] = b'{"a": 1, "a": {"$ne": 1}}'
    seeds["malformed.json"] = b'{"a": [1, 2'
    seeds["deep_and_64.json"] = deep('{"$and":[', "]}", '{"a":1}', 31).encode()
    # issue 14 item 1: ~9,000 levels overflowed the stack in Filter::from_json.
    seeds["deep_and_10000.json"] = deep('{"$and":[', "]}", '{"a":1}', 10000).encode()
    return seeds


# Each *_seeds() gives the seeds, or (seeds, regressions): the regression inputs failed when
# written (see the comment at each) and stay as regression cases once fixed.


def profile_seeds():
    seeds = {"example_" + p.name: p.read_bytes() for p in sorted(CONFIGS.glob("*.yaml"))}
    seeds.update({
        "minimal.yaml": b"profiles:\n  l:\n    type: local\n",
        "default_missing.yaml": b"default: nope\nprofiles:\n  a:\n    type: local\n",
        "env.yaml": b"profiles:\n  r:\n    type: redis\n    host: ${HOME}\n    password: ${VSTASH_FUZZ_UNSET}\n",
        "wrong_types.yaml": b"profiles:\n  q:\n    type: qdrant\n    port: eighty\n    wait: maybe\n    timeout_ms: 1e400\n",
        "unknown_key.yaml": b"profiles:\n  p:\n    type: pinecone\n    hots: x\n",
        "not_a_map.yaml": b"- a\n- b\n",
        "flow_and_anchor.yaml": b"profiles: {a: &x {type: local, path: /tmp/a.db}, b: *x}\n",
        "list_value.yaml": b"profiles:\n  a:\n    type: local\n    path: [1, 2]\n",
        "tabs_and_bom.yaml": b"\xef\xbb\xbfprofiles:\n\tl:\n    type: local\n",
        "malformed.yaml": b"profiles:\n  a: [\n",
        "deep_flow.yaml": deep("[", "]", "1", 10000).encode(),
        "deep_block.yaml": b"".join(b"  " * i + b"k:\n" for i in range(300)),
    })
    return seeds, {
        # A key that is not a scalar: YAML::TypedBadConversion escapes from as<std::string>().
        "non_scalar_profile_name.yaml": b"profiles:\n  [a, b]:\n    type: local\n",
        "non_scalar_top_key.yaml": b"? [a]\n: x\n",
        "non_scalar_profile_key.yaml": b"profiles:\n  a:\n    type: local\n    {k: v}: 1\n",
    }


def jsonl_seeds():
    lines = [
        {"id": "a", "vector": [1, 2, 3], "label": 1, "metadata": {"genre": "drama"}},
        {"id": 42, "values": [0.5, -1e-7, 3e38]},
        {"vector": [1], "metadata": None, "label": [1, 2]},
    ]
    ok = "\n".join(json.dumps(x) for x in lines).encode() + b"\n"
    return {
        "records.jsonl": ok,
        "bom_crlf.jsonl": b"\xef\xbb\xbf" + ok.replace(b"\n", b"\r\n"),
        "blank_lines.jsonl": b"\n" + ok + b"\n  \t\n",
        "objects.jsonl": b'{"genre": "drama"}\n{"tags": ["a", "b"], "n": 1.5}\n',
        "both_vectors.jsonl": b'{"vector": [1], "values": [2]}\n',
        "unknown_key.jsonl": b'{"vector": [1], "extra": 1}\n',
        "bad_vector.jsonl": b'{"vector": []}\n{"vector": [1, "2"]}\n{"vector": {"a": 1}}\n',
        "bad_id.jsonl": b'{"id": 1.5, "vector": [1]}\n{"id": [1], "vector": [1]}\n',
        "not_object.jsonl": b"[1, 2]\n",
        "out_of_range.jsonl": b'{"vector": [1e400]}\n',
        "invalid_utf8.jsonl": b'{"id": "\xff\xfe", "vector": [1]}\n',
        "malformed.jsonl": b'{"vector": [1, 2\n',
        "deep_metadata_70.jsonl": ('{"vector": [1], "metadata": {"m": %s}}\n' % deep('{"a":', "}", "1", 70)).encode(),
        # issue 14 item 1: metadata nested 60,000 levels crashed ingest.
        "deep_metadata_60000.jsonl": ('{"vector": [1], "metadata": {"m": %s}}\n' % deep("[", "]", "1", 60000)).encode(),
    }


def qdrant_seeds():
    # Byte 0, bits 0-1 pick the dataset (replyspecs.hpp): 0 f32 (3,) dot, 1 f32 (4,) cosine + i64
    # labels, 2 u8 (2, 2) euclidean + f32 (3,) labels, 3 f16 (2,) euclidean + bool labels;
    # bits 2-3 the operation (fuzz_qdrant.cpp).
    ops = {"scroll": 0, "query": 1, "search": 2, "retrieve": 3}

    def reply(spec, op, result):
        selector = spec | ops[op] << 2
        return bytes([selector]) + json.dumps({"result": result, "status": "ok", "time": 0.001}).encode()

    p0 = {"id": 0, "vector": [1, 2, 3], "payload": {"_id": "0", "_idx": 0, "metadata": {"genre": "drama"}}}
    p1 = {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "score": 0.9,
          "payload": {"_id": "row-1", "_idx": 1, "label": 3,
                      "_data": vsa1(1, [1, 4], struct.pack("<4f", 1, 0, 0, 0))}}
    p2 = {"id": 7, "payload": {"_id": "img", "_idx": 2, "label": [0.5, 1, 2],
                               "_data": vsa1(7, [1, 2, 2], b"\x00\x01\x02\x03")}}
    catalog = {"id": "ddc95e9b-59a8-50d1-9b69-beb0ef59cb6e",
               "payload": {"name": "mnist", "next_index": 10,
                           "spec": {"dtype": "float32", "row_shape": [4], "label_dtype": "int64",
                                    "label_shape": [], "metric": "cosine", "metadata": {}}}}
    huge = {"id": 1, "payload": {"name": "h", "spec": {"dtype": "float64", "row_shape": [2**40, 2**40],
                                                        "label_dtype": None, "label_shape": [], "metric": "dot"}}}
    return {
        "scroll.bin": reply(0, "scroll", {"points": [p0], "next_page_offset": None}),
        "query.bin": reply(1, "query", {"points": [p1]}),
        "search.bin": reply(1, "search", [p1]),
        "retrieve_u8.bin": reply(2, "retrieve", [p2]),
        "catalog.bin": reply(1, "retrieve", [catalog, p1]),
        "no_result.bin": b"\x00" + b'{"status": {"error": "x"}}',
        "bad_shape.bin": reply(0, "query", [p0]),
        "bad_blob.bin": reply(3, "retrieve", [{"id": 1, "payload": {"_id": "a", "_idx": 0, "label": 1,
                                                                    "_data": "VlNBMQ=="}}]),
    }, {
        # qdrantpoints.cpp spec_from_json accepts any row_shape: shape_product (src/array.cpp)
        # overflows int64 (UB) and the Array size wraps.
        "catalog_huge_shape.bin": reply(0, "retrieve", [huge, p0]),
        # decode_records puts nlohmann's "[json.exception.type_error.302] ..." in its message.
        "wrong_types.bin": reply(0, "scroll", {"points": [{"id": 1, "vector": ["x"], "payload": {"_id": 1, "_idx": "0"}}],
                                               "next_page_offset": None}),
        "bool_label_true.bin": reply(3, "retrieve", [{"id": 1, "payload": {"_id": "a", "_idx": 0, "label": True}}]),
        # spec_from_json too (a catalog spec without label_dtype).
        "catalog_spec_missing_key.bin": reply(0, "retrieve", [{"id": 1, "payload": {"name": "d", "spec": {
            "dtype": "float32", "row_shape": [3], "label_shape": [], "metric": "dot"}}}]),
        "missing_payload_id.bin": reply(0, "query", {"points": [{"id": 1, "score": 0.5, "payload": {"_idx": 0}}]}),
    }


def pinecone_seeds():
    # Byte 0, bits 0-1 pick the dataset (as for Qdrant), bit 2 the request: /query or /vectors/fetch.
    def body(spec, doc):
        return bytes([spec | (4 if "vectors" in doc else 0)]) + json.dumps(doc).encode()

    row = {"id": "a", "score": 0.5, "values": [1, 2, 3], "metadata": {"_idx": 0, "genre": "drama", "n": 3.0,
                                                                   "_json": json.dumps({"nested": {"x": [1]}})}}
    labelled = {"id": "b", "score": 0.25, "values": [1, 0, 0, 0], "metadata": {"_idx": 1, "_label": vsa1(6, [], struct.pack("<q", 3))}}
    exact = {"id": "vstash-sha1:00", "values": [1, 0, 0, 0],
             "metadata": {"_idx": 2, "_id": "x" * 600, "_data": vsa1(7, [2, 2], b"\x01\x02\x03\x04"),
                          "_label": vsa1(1, [3], struct.pack("<3f", 1, 2, 3))}}
    zero = {"id": "z", "score": 0.0, "values": [1.1754943508222875e-38, 0, 0], "metadata": {"_idx": 3, "_zero": True}}
    catalog = {"id": "mnist", "values": [1, 0, 0, 0],
               "metadata": {"kind": "dataset", "dataset": "mnist", "dtype": "float32", "shape": "[4]",
                            "metric": "cosine", "metadata": "{}", "next_index": 10.0, "row_bytes": 200.0,
                            "label_dtype": "int64", "label_shape": "[]"}}
    huge = {"id": "h", "metadata": {"kind": "dataset", "dataset": "h", "dtype": "float64",
                                    "shape": "[1099511627776, 1099511627776]", "metric": "dot"}}
    return {
        "query.bin": body(0, {"matches": [row, zero], "namespace": "ds", "usage": {"readUnits": 5}}),
        "query_labels.bin": body(1, {"matches": [labelled]}),
        "fetch_exact.bin": body(2, {"vectors": {"vstash-sha1:00": exact}, "namespace": "ds"}),
        "fetch_catalog.bin": body(1, {"vectors": {"mnist": catalog, "b": labelled}}),
        "no_matches.bin": body(3, {"matches": [], "namespace": ""}),
        "match_without_score.bin": body(0, {"matches": [{"id": "a", "values": [1, 2, 3]}]}),
    }, {
        # parse_catalog accepts any shape: shape_product (src/array.cpp) overflows int64 (UB).
        "catalog_huge_shape.bin": body(0, {"vectors": {"h": huge, "a": row}}),
        # decode_row lets nlohmann exceptions escape (type_error, out_of_range, parse_error of
        # "_json") and casts a huge "_idx" double to int64 (UB).
        "wrong_types.bin": body(0, {"matches": [{"id": "a", "score": 1, "values": ["x"],
                                                 "metadata": {"_idx": "0", "_label": 1}}]}),
        "big_index.bin": body(0, {"matches": [{"id": "a", "score": 1, "values": [1, 2, 3], "metadata": {"_idx": 1e300}}]}),
        "bad_json_metadata.bin": body(0, {"matches": [{"id": "a", "score": 1, "values": [1, 2, 3],
                                                       "metadata": {"_json": "{"}}]}),
        "fetch_missing_id.bin": body(0, {"vectors": {"a": {"values": [1, 2, 3], "metadata": {"_idx": 0}}}}),
        "fetch_id_not_string.bin": body(0, {"vectors": {"a": {"id": 5, "values": [1, 2, 3]}}}),
    }


def main():
    targets = [("npyheader", (npy_seeds(), {})), ("filter", (filter_seeds(), {})), ("profile", profile_seeds()),
               ("jsonl", (jsonl_seeds(), {})), ("qdrant", qdrant_seeds()), ("pinecone", pinecone_seeds())]
    for name, (seeds, regressions) in targets:
        out = ROOT / name
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for file, data in seeds.items():
            (out / file).write_bytes(data)
        for file, data in regressions.items():
            (HERE / "regressions" / name).mkdir(parents=True, exist_ok=True)
            (HERE / "regressions" / name / file).write_bytes(data)


if __name__ == "__main__":
    main()
