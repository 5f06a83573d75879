#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# check-format.sh: every tracked .cpp/.hpp satisfies .clang-format (CONTRIBUTING.md).
#   scripts/check-format.sh [ROOT]
# Runs `clang-format --dry-run -Werror` over the C++ files git tracks under ROOT (default: this
# repository; a tree without git: every .cpp/.hpp outside build*/), and prints each misformatted
# line. Exit 0: all formatted; 1: a file is not (`clang-format -i FILE` fixes it); 2: no
# clang-format. The tree is formatted by clang-format 14 (Debian 12's; install-deps --test
# installs it), used first; $CLANG_FORMAT names another binary. CTest runs it as `format`.
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
clang_format=${CLANG_FORMAT:-}
if [[ -z $clang_format ]]; then
  clang_format=clang-format
  command -v clang-format-14 >/dev/null 2>&1 && clang_format=clang-format-14
fi
if ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "check-format: $clang_format not found (apt-get install clang-format-14)" >&2
  exit 2
fi
cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked files still present (a file deleted in the work tree is not checked).
  mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp' | while read -r f; do [[ -f $f ]] && echo "$f"; done)
else
  mapfile -t files < <(find . -path './build*' -prune -o -type f \( -name '*.cpp' -o -name '*.hpp' \) -print | sort)
fi
if ((${#files[@]} == 0)); then
  echo "check-format: no C++ files under $root" >&2
  exit 1
fi
if ! "$clang_format" --dry-run -Werror --style=file "${files[@]}"; then
  echo "check-format: files above are not formatted: run clang-format -i on them" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
