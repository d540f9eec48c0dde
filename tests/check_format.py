#!/usr/bin/env python3
"""Fails when a C source or header drifts from .clang-format.

Formatting differs between clang-format releases, so the check runs with the
release the style was written for (Debian 12's, 14) and skips, saying why, with
another or none. The README's test command installs it.

usage: check_format.py SOURCE_ROOT
"""
import glob
import os
import re
import shutil
import subprocess
import sys

RELEASE = 14
FOLDERS = ["src", "include", "tests", "clients"]
SKIP = 77  # meson's exit status for a skipped test


def find_clang_format():
    for name in (f"clang-format-{RELEASE}", "clang-format"):
        path = shutil.which(name)
        if path:
            out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
            match = re.search(r"version (\d+)\.", out)
            if match and int(match.group(1)) == RELEASE:
                return path, None
            return None, f"{name} is not release {RELEASE}: {out.strip()}"
    return None, f"clang-format {RELEASE} is not installed"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    tool, why = find_clang_format()
    if tool is None:
        print(f"skipped: {why} (apt-get install clang-format)")
        sys.exit(SKIP)
    files = sorted(f for folder in FOLDERS
                   for f in glob.glob(f"{folder}/**/*.[ch]", root_dir=root, recursive=True))
    drifted = []
    for rel in files:
        with open(os.path.join(root, rel), "rb") as f:
            text = f.read()
        formatted = subprocess.run([tool, f"--assume-filename={rel}", "--style=file"],
                                   input=text, capture_output=True, check=True,
                                   cwd=root).stdout
        if formatted != text:
            drifted.append(rel)
    for rel in drifted:
        print(f"{rel}: differs from .clang-format (clang-format -i {rel})")
    print(f"{len(files)} files, {len(drifted)} not formatted")
    sys.exit(1 if drifted else 0)


if __name__ == "__main__":
    main()
