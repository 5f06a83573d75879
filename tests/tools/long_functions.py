#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# long_functions.py: list the longest C++ functions and files of the tree (issue 15 line 6:
# no function over about 80 lines, no file over about 600 lines).
#   long_functions.py [--max-lines N] [--max-file-lines M] [--top K] [--root ROOT] [DIR ...]
# Prints the top K functions and files by line count; exits 1 when a function is longer than N
# or a file longer than M (only when that limit is given), else 0. DIRs default to the code
# folders (src commands workflows python backends), relative to ROOT (default: this repository).
#
# A brace-matching scan of clang-formatted code, not a parser: comments, string and character
# literals (raw strings too) and preprocessor lines are blanked; a `{` outside any function whose
# header (the text since the last `;`, `{` or `}`) holds a `)` and no namespace/class/struct/
# union/enum keyword opens a function body, which ends at its matching `}`. A constructor's
# brace-initialised members (`: m_x{x} {`) are skipped. Lambdas and local classes count toward
# the function around them. A function's length runs from its header's first line to its `}`.
import argparse
import os
import re
import sys

from sourcetree import cpp_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DIRS = ["src", "commands", "workflows", "python", "backends"]
SCOPE_KEYWORDS = re.compile(r"\b(namespace|class|struct|union|enum)\b|extern\s*$")


def blank(text):
    """Return text with comments, literals and preprocessor lines replaced by spaces, newlines kept."""
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c in " \t":
            out.append(c)
            i += 1
            continue
        if at_line_start and c == "#":
            # A preprocessor line, with its backslash continuations.
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append("  \n")
                    i += 2
                    continue
                out.append(" ")
                i += 1
            continue
        at_line_start = False
        if c == "\n":
            at_line_start = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and i + 1 < n and text[i + 1] == '"' and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r"[^\n]", " ", text[i + 2 : j]))
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():
                out.append(" ")  # a digit separator (1'000'000)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + " " * (j - i - 2) + c if j - i >= 2 else " " * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def function_name(header):
    """The qualified name before the header's first top-level `(`."""
    m = re.search(r"((?:[A-Za-z_~][\w]*\s*(?:<[^()]*>)?\s*::\s*)*(?:operator\s*\S+?|~?[A-Za-z_]\w*))\s*\(", header)
    return re.sub(r"\s+", "", m.group(1)) if m else header.strip()[:40]


def scan(path):
    """Yield (name, first_line, last_line) for each function body in the file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = blank(f.read())
    stack = []  # kinds: 'scope', 'function', 'init', 'other'
    header, header_line = "", None
    line = 1
    fn_start = None
    for c in text:
        if c == "\n":
            line += 1
        if stack and stack[-1][0] in ("function", "other_in_fn"):
            if c == "{":
                stack.append(("other_in_fn", line))
            elif c == "}":
                kind, _ = stack.pop()
                if kind == "function":
                    yield fn_start[0], fn_start[1], line
            continue
        if c == "{":
            h = header.strip()
            if h and header_line is None:
                header_line = line
            if SCOPE_KEYWORDS.search(h) and "(" not in h.split("{")[0].split("=")[0] or h.startswith("extern"):
                stack.append(("scope", line))
            elif ")" in h and re.search(r"\)\s*:", h) and re.search(r"[\w>]\s*$", h):
                stack.append(("init", line))  # a member's brace initialiser in a constructor's list
                header += "{"
                continue
            elif ")" in h and "=" not in h.split("(")[0]:
                fn_start = (function_name(h), header_line or line)
                stack.append(("function", line))
            else:
                stack.append(("other", line))
            header, header_line = "", None
        elif c == "}":
            kind = stack.pop()[0] if stack else "scope"
            if kind == "init":
                header += "}"
                continue
            header, header_line = "", None
        elif c == ";":
            if not (stack and stack[-1][0] == "init"):
                header, header_line = "", None
        else:
            if not c.isspace() and header_line is None and not header.strip():
                header_line = line
            header += c


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dirs", nargs="*", default=DEFAULT_DIRS)
    ap.add_argument("--max-lines", type=int, default=None)
    ap.add_argument("--max-file-lines", type=int, default=None)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--root", default=ROOT)
    args = ap.parse_args()
    functions, files = [], []
    for path, rel in cpp_files(args.root, args.dirs):
        with open(path, encoding="utf-8", errors="replace") as f:
            files.append((sum(1 for _ in f), rel))
        for fn, first, last in scan(path):
            functions.append((last - first + 1, f"{rel}:{first}", fn))
    functions.sort(key=lambda t: (-t[0], t[1]))
    files.sort(key=lambda t: (-t[0], t[1]))
    print(f"longest functions (top {args.top}):")
    for n, where, fn in functions[: args.top]:
        print(f"  {n:5d}  {where}  {fn}")
    print(f"largest files (top {args.top}):")
    for n, rel in files[: args.top]:
        print(f"  {n:5d}  {rel}")
    failed = False
    if args.max_lines is not None:
        for n, where, fn in functions:
            if n > args.max_lines:
                print(f"{where}: function {fn} has {n} lines (limit {args.max_lines})", file=sys.stderr)
                failed = True
    if args.max_file_lines is not None:
        for n, rel in files:
            if n > args.max_file_lines:
                print(f"{rel}: {n} lines (limit {args.max_file_lines})", file=sys.stderr)
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
