#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# check_includes.py: the include rules of CONTRIBUTING.md.
#   check_includes.py style [ROOT]   every #include "..." names a file by its path from the
#                                    repository root (`#include "src/io/npy.hpp"`): no `..`, no
#                                    path relative to the including file; a project file is
#                                    never included with <...>
#   check_includes.py layers [ROOT]  the arrows between layers point down only:
#                                    src (core) -> backends -> workflows -> commands, python
#                                    (a folder includes only from itself and the folders below it)
# Prints one line per violation, `FILE:LINE: ...`, and exits 1 if there is one, else 0.
# Reads the C++ files of the code folders and tests/ under ROOT (default: this repository).
import os
import re
import sys

from sourcetree import cpp_files

# Each layer and the folders it may include from (besides itself). The front ends commands/
# and python/ are the top; python/ also uses the CLI's shared checks in commands/common.hpp.
LAYERS = {
    "src": [],
    "backends": ["src"],
    "workflows": ["src", "backends"],
    "commands": ["src", "backends", "workflows"],
    "python": ["src", "backends", "workflows", "commands"],
}
SCANNED = list(LAYERS) + ["tests"]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def includes(root):
    """Yield (relative file, line number, delimiter, included path) for every #include."""
    for path, rel in cpp_files(root, SCANNED):
        with open(path, encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if m:
                    yield rel, n, m.group(1), m.group(2)


def check_style(root):
    bad = []
    for rel, n, delim, inc in includes(root):
        if delim == "<":
            if "/" in inc and inc.split("/")[0] in SCANNED and os.path.isfile(os.path.join(root, inc)):
                bad.append(f'{rel}:{n}: #include <{inc}>: a project file is included as "{inc}"')
            continue
        if inc.startswith(("./", "../")) or "/../" in inc:
            bad.append(f'{rel}:{n}: #include "{inc}": name the file from the repository root, without ..')
        elif not os.path.isfile(os.path.join(root, inc)):
            bad.append(f'{rel}:{n}: #include "{inc}": no such file from the repository root')
    return bad


def check_layers(root):
    bad = []
    for rel, n, delim, inc in includes(root):
        layer = rel.split(os.sep)[0]
        target = inc.split("/")[0]
        if delim != '"' or layer not in LAYERS or target not in LAYERS or target == layer:
            continue
        if target not in LAYERS[layer]:
            bad.append(f'{rel}:{n}: #include "{inc}": {layer}/ must not include {target}/ (layers: CONTRIBUTING.md)')
    return bad


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("style", "layers"):
        print("usage: check_includes.py style|layers [ROOT]", file=sys.stderr)
        return 2
    root = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", ".."))
    bad = check_style(root) if sys.argv[1] == "style" else check_layers(root)
    for line in bad:
        print(line)
    if bad:
        print(f"{len(bad)} include(s) break the {sys.argv[1]} rule", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
