#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Extracts what the Qdrant double checks from the official OpenAPI documents.

The double (qdrant_double.py) matches every request against the spec's operations: method and
path template, declared query parameters, and the required/known top-level fields of each
alternative of the JSON body. This script writes exactly that, and nothing else, to
tests/doubles/qdrant_spec.json, so the double starts from what the repository holds.
  make_qdrant_spec.py            regenerate qdrant_spec.json from SPEC_DIR
  make_qdrant_spec.py --check    exit 1 if qdrant_spec.json differs from what SPEC_DIR gives;
                                 without SPEC_DIR print one line and exit 77 (skipped), except
                                 under CI=true, where the official documents must be there
SPEC_DIR is $VSTASH_SPEC_DIR, else ../shared/specs beside the repository. The v1.19 document
wins; operations only in the v1.18 one (/points/search) are added after it.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "qdrant_spec.json")
DOCS = ("qdrant-openapi.json", "qdrant-openapi-v1.18.json")
METHODS = ("get", "put", "post", "patch", "delete")
SKIPPED = 77


def spec_dir():
    return os.environ.get("VSTASH_SPEC_DIR") or os.path.normpath(
        os.path.join(HERE, "..", "..", "..", "shared", "specs"))


def resolve(doc, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def alternatives(doc, schema):
    """Object schemas a body may match: anyOf/oneOf expanded, as {required, properties}."""
    schema = resolve(doc, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [a for s in schema[key] for a in alternatives(doc, s)]
    if schema.get("type") == "object" or "properties" in schema:
        return [{"required": list(schema.get("required", [])), "properties": list(schema.get("properties", {}))}]
    return []


def extract(docs):
    ops, seen = [], set()
    for doc in docs:
        for template, item in doc["paths"].items():
            for method, op in item.items():
                if (template, method) in seen or method not in METHODS:
                    continue
                seen.add((template, method))
                entry = {"path": template, "method": method.upper(),
                         "query": [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]}
                rb = op.get("requestBody")
                schema = (rb or {}).get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    entry["body"] = {"required": bool(rb.get("required")), "alternatives": alternatives(doc, schema)}
                ops.append(entry)
    return {"generated_by": "tests/doubles/make_qdrant_spec.py",
            "from": [d.get("info", {}).get("version", "") for d in docs], "operations": ops}


def render(data):
    # One operation per line: small diffs when the spec changes.
    lines = [json.dumps(op, separators=(",", ":")) for op in data["operations"]]
    head = json.dumps({k: v for k, v in data.items() if k != "operations"})[:-1]
    return head + ', "operations": [\n' + ",\n".join(lines) + "\n]}\n"


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        print("usage: make_qdrant_spec.py [--check]", file=sys.stderr)
        return 2
    src = spec_dir()
    paths = [os.path.join(src, d) for d in DOCS]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        ci = os.environ.get("CI", "").lower() == "true"
        print(f"make_qdrant_spec.py: {missing[0]} not found (the official Qdrant spec, beside the repository)"
              + ("; CI=true needs it" if ci else "; spec check skipped"), file=sys.stderr)
        return 1 if ci or not check else SKIPPED
    docs = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            docs.append(json.load(f))
    text = render(extract(docs))
    if check:
        with open(OUT, encoding="utf-8") as f:
            if f.read() != text:
                print(f"make_qdrant_spec.py: {OUT} is out of date with {src}: run tests/doubles/make_qdrant_spec.py",
                      file=sys.stderr)
                return 1
        print(f"make_qdrant_spec.py: {os.path.basename(OUT)} matches {src}")
        return 0
    with open(OUT + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(OUT + ".tmp", OUT)
    print(f"make_qdrant_spec.py: wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
