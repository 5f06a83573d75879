#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# house_checks_test.py: the house-rule checks fail when a rule is broken, and pass when it holds.
# Each case builds a small tree in a temp dir (the repository's .clang-format, a few files under
# src/, backends/, workflows/, commands/), runs one check on it, breaks one rule, and runs it again:
#   scripts/check-format.sh                 one misformatted file
#   tests/tools/check_includes.py style     #include "../x.hpp", a path not from the root, <> for ours
#   tests/tools/check_includes.py layers    src -> backends, backends -> workflows, workflows -> commands
#   tests/tools/check_comment_paths.py      a comment naming a file that does not exist
#   tests/tools/long_functions.py           a function of 81 lines (braces in strings, a
#                                           constructor's brace initialisers, a lambda)
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE = os.environ.get("VSTASH_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PYTHON = os.environ.get("PYTHON") or sys.executable
HEADER = "// SPDX-License-Identifier: MIT\n"
GOOD = {
    "src/core.hpp": HEADER + "#pragma once\nint core();\n",
    "src/core.cpp": HEADER + '// See src/core.hpp.\n#include "src/core.hpp"\n\nint core() { return 1; }\n',
    "backends/store.hpp": HEADER + '#pragma once\n#include "src/core.hpp"\n',
    "workflows/flow.hpp": HEADER + '#pragma once\n#include "backends/store.hpp"\n',
    "commands/run.cpp": HEADER + '#include "workflows/flow.hpp"\n',
}


class HouseChecks(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="vstash-house-")
        shutil.copy(os.path.join(SOURCE, ".clang-format"), self.root)
        for rel, text in GOOD.items():
            self.write(rel, text)

    def tearDown(self):
        shutil.rmtree(self.root)

    def write(self, rel, text):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def run_check(self, *argv):
        if argv[0].endswith(".py"):
            argv = (PYTHON,) + argv
        p = subprocess.run(list(argv) + [self.root], capture_output=True, text=True, timeout=120)
        return p.returncode, p.stdout + p.stderr

    def assert_breaks(self, argv, rel, text, expect):
        code, out = self.run_check(*argv)
        self.assertEqual(code, 0, out)
        self.write(rel, text)
        code, out = self.run_check(*argv)
        self.assertEqual(code, 1, out)
        self.assertIn(expect, out)

    def test_format(self):
        script = os.path.join(SOURCE, "scripts", "check-format.sh")
        self.assert_breaks(["bash", script], "src/core.cpp", GOOD["src/core.cpp"].replace("int core()", "int  core( )"),
                           "src/core.cpp")

    def test_include_style(self):
        tool = os.path.join(SOURCE, "tests", "tools", "check_includes.py")
        for text, expect in [('#include "../core.hpp"\n', "without .."), ('#include "core.hpp"\n', "no such file"),
                             ("#include <src/core.hpp>\n", "a project file")]:
            with self.subTest(include=text.strip()):
                self.assert_breaks([tool, "style"], "src/other.cpp", HEADER + text, "src/other.cpp:2")
                code, out = self.run_check(tool, "style")
                self.assertIn(expect, out)
                os.remove(os.path.join(self.root, "src/other.cpp"))

    def test_layers(self):
        tool = os.path.join(SOURCE, "tests", "tools", "check_includes.py")
        for rel, inc in [("src/up.cpp", "backends/store.hpp"), ("src/up.cpp", "commands/run.cpp"),
                         ("backends/up.cpp", "workflows/flow.hpp"), ("workflows/up.cpp", "commands/run.cpp")]:
            with self.subTest(file=rel, include=inc):
                self.assert_breaks([tool, "layers"], rel, HEADER + f'#include "{inc}"\n', f"{rel}:2")
                os.remove(os.path.join(self.root, rel))

    def test_comment_paths(self):
        tool = os.path.join(SOURCE, "tests", "tools", "check_comment_paths.py")
        self.assert_breaks([tool], "workflows/flow.cpp", HEADER + "// Reads src/gone.hpp and src/core.hpp.\n",
                           '"src/gone.hpp" does not exist')
        self.write("workflows/flow.cpp", HEADER + "// One per area: tests/<name>.sh, src/{core,gone}.hpp.\n")
        self.write("tests/x.sh", "#!/bin/sh\n# run src/core.hpp then commands/missing.sh\n")
        code, out = self.run_check(tool)
        self.assertEqual(code, 1, out)
        self.assertIn('tests/x.sh:2: "commands/missing.sh" does not exist', out)
        self.assertNotIn("src/core.hpp", out)

    def test_function_length(self):
        tool = os.path.join(SOURCE, "tests", "tools", "long_functions.py")
        argv = [PYTHON, tool, "--max-lines", "80", "--root", self.root, "src"]

        def constructor(body_lines):  # 4 + body_lines lines from signature to brace
            body = "".join(f"  m_a += {i};\n" for i in range(body_lines))
            return (HEADER + 'Foo::Foo(int a)\n    : m_a{a}, m_b{R"({)"} {\n  auto f = [] { return "}{"; };\n' + body +
                    "}\nint after() { return 0; }\n")

        self.write("src/steps.cpp", constructor(76))
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("80  src/steps.cpp:2  Foo::Foo", p.stdout)
        self.write("src/steps.cpp", constructor(77))
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("src/steps.cpp:2: function Foo::Foo has 81 lines (limit 80)", p.stderr)

if __name__ == "__main__":
    unittest.main()
