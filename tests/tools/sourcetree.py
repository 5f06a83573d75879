# SPDX-License-Identifier: MIT
# sourcetree.py: the C++ files of the tree, for the checks beside it (check_includes.py,
# long_functions.py).
import os

CPP_EXTENSIONS = (".cpp", ".hpp", ".h", ".cc")
SKIP_DIRS = ("corpus", "regressions", "__pycache__")


def cpp_files(root, tops):
    """Yield (path, path relative to root) for each C++ file under the folders tops of root, sorted."""
    for top in tops:
        for dirpath, dirnames, names in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(names):
                if name.endswith(CPP_EXTENSIONS):
                    path = os.path.join(dirpath, name)
                    yield path, os.path.relpath(path, root)
