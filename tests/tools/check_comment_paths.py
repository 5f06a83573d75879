#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# check_comment_paths.py: comments point only at files in the repository (CONTRIBUTING.md).
#   check_comment_paths.py [ROOT]
# Reads the comments of the C++, CMake, shell and Python sources under ROOT (default: this
# repository) and, in them, every path that starts at a top-level folder (`backends/backend.hpp`,
# `src/io/`, `tests/suites/<name>.cmake`, `workflows/ingest/pipeline`). Each must name a file or
# folder of the tree: as written, with a source extension added (a module named without one), or,
# for a pattern (`*`, `<name>`, `NAME`, `{a,b}`), matching at least one. A relative path ending in a
# source extension (backends/registry.hpp names its cache tier so) must exist beside the
# commenting file or beside one of its parent folders. Files of other projects are listed in EXTERNAL. Prints one
# line per stale reference, `FILE:LINE: "PATH" does not exist`, and exits 1 if there is one.
import glob
import os
import re
import sys

TOP = ("src", "backends", "workflows", "commands", "python", "tests", "scripts", "bench", "configs", "docs", "man",
       "completions", "cmake", ".ci")
SKIP_DIRS = {".git", "build", "__pycache__", "corpus", "regressions", "node_modules"}
# Paths of other projects that comments cite on purpose.
EXTERNAL = {"pgvector/psycopg/vector.py"}  # pgvector-python's binary dumper (bench/pgvector_bench.sh)
EXTENSIONS = ("", ".hpp", ".cpp", ".h", ".py", ".sh", ".cmake", ".md", ".yaml")
# A path starting at a top-level folder, not inside a longer path or a word (`libmamba/src/x`, `$X/src`).
PATH = re.compile(r"(?<![\w./$-])((?:%s)/[\w.*<>{},/-]*)" % "|".join(re.escape(t) for t in TOP))
# A relative path ending in a source extension.
RELATIVE = re.compile(r"(?<![\w./$-])([\w.-]+/[\w./-]*[.](?:hpp|cpp|h|py|sh|cmake))\b")


def comments(path, text):
    """Yield (line number, comment text) for each comment line of the file."""
    if path.endswith((".cpp", ".hpp", ".h", ".cc")):
        in_block = False
        for n, line in enumerate(text.splitlines(), 1):
            if in_block:
                end = line.find("*/")
                yield n, line if end < 0 else line[:end]
                in_block = end < 0
                continue
            code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)  # string literals are not comments
            at = code.find("//")
            block = code.find("/*")
            if block >= 0 and (at < 0 or block < at):
                end = code.find("*/", block + 2)
                yield n, code[block + 2 : end if end >= 0 else None]
                in_block = end < 0
            elif at >= 0:
                yield n, code[at + 2 :]
    else:
        for n, line in enumerate(text.splitlines(), 1):
            code = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", '""', line)
            m = re.search(r"(?:^|\s)#(?![!{])", code)
            if m:
                yield n, code[m.end() :]


def exists(root, ref):
    """Whether a referenced path (or pattern) names something in the tree."""
    ref = re.sub(r":\d+$", "", ref).rstrip(".,:;")
    ref = re.sub(r"(?<![\w])[A-Z][A-Z_]+(?![\w])", "*", ref)  # a placeholder: backends/NAME/
    if re.search(r"[*<{]", ref):
        pattern = re.sub(r"<[^>]*>", "*", ref)
        for alt in expand_braces(pattern):
            if glob.glob(os.path.join(root, alt)):
                return True
        return False
    base = os.path.join(root, ref)
    return any(os.path.exists(base + ext) for ext in EXTENSIONS)


def exists_relative(root, rel_dir, ref):
    """Whether ref names a file beside rel_dir or beside one of its parent folders."""
    while True:
        if os.path.exists(os.path.join(root, rel_dir, ref)):
            return True
        if not rel_dir:
            return False
        rel_dir = os.path.dirname(rel_dir)


def expand_braces(pattern):
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    out = []
    for alt in m.group(1).split(","):
        out += expand_braces(pattern[: m.start()] + alt + pattern[m.end() :])
    return out


def sources(root):
    for dirpath, dirnames, names in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("build"))
        for name in sorted(names):
            if name.endswith((".cpp", ".hpp", ".h", ".cc", ".cmake", ".sh", ".py")) or name == "CMakeLists.txt":
                yield os.path.join(dirpath, name)
    run = os.path.join(root, ".ci", "run")
    if os.path.exists(run):
        yield run


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
    stale = 0
    for path in sources(root):
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for n, comment in comments(path, text):
            for m in PATH.finditer(comment):
                ref = m.group(1)
                if not exists(root, ref):
                    print(f'{rel}:{n}: "{ref.rstrip(".,:;")}" does not exist')
                    stale += 1
            for m in RELATIVE.finditer(comment):
                ref = m.group(1)
                if ref.split("/")[0] in TOP or ref.startswith(".") or ref in EXTERNAL:
                    continue
                if not exists_relative(root, os.path.dirname(rel), ref):
                    print(f'{rel}:{n}: "{ref}" does not exist')
                    stale += 1
    if stale:
        print(f"{stale} stale path(s) in comments", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
