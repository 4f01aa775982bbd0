#!/usr/bin/env python3
"""Generate single_include/ctnn.hpp, the whole of ctnn in one header.

Starts from include/ctnn/ctnn.hpp and replaces every `#include "ctnn/..."` with the text of that
header, recursively, the first time it is met (what #pragma once would do); later includes of the
same header are dropped. The headers' own `#pragma once` lines are dropped and one is put at the
top. `#include <...>` lines (standard library, Highway, zlib, OpenMP) are kept as they are.

    python3 scripts/amalgamate.py            # (re)write single_include/ctnn.hpp
    python3 scripts/amalgamate.py --check    # exit 1 if the committed file is out of date
    python3 scripts/amalgamate.py --output PATH

Uses the standard library only; the output depends on nothing but the headers (no dates), so
--check can compare it byte for byte.
"""

import argparse
import difflib
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
INCLUDE_DIR = REPO / "include"
ROOT_HEADER = "ctnn/ctnn.hpp"
DEFAULT_OUTPUT = REPO / "single_include" / "ctnn.hpp"
COMMAND = "python3 scripts/amalgamate.py"

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
PRAGMA_ONCE_RE = re.compile(r"^\s*#\s*pragma\s+once\s*(//.*)?$")
IF_RE = re.compile(r"^\s*#\s*if(n?def)?\b")
ENDIF_RE = re.compile(r"^\s*#\s*endif\b")

BANNER = f"""\
// ctnn: the whole library in one header.
//
// GENERATED FILE -- DO NOT EDIT. It was generated from include/ctnn/ctnn.hpp by
//     {COMMAND}
// Edit the headers under include/ctnn/ and run that command again; CI runs
// `{COMMAND} --check` and fails when this file is out of date.
//
// Needs C++20, Highway's headers (with HWY_COMPILE_ONLY_STATIC=1 defined), OpenMP and zlib;
// the CMake target ctnn::ctnn sets all of these up.
#pragma once
"""


class AmalgamateError(Exception):
    pass


def inline(name, seen, out, stack):
    """Appends header `name` (e.g. "ctnn/core/shape.hpp"), with its ctnn includes inlined, to out."""
    path = INCLUDE_DIR / name
    if not path.is_file():
        where = f" (included from {stack[-1]})" if stack else ""
        raise AmalgamateError(f"{name}{where} does not exist under {INCLUDE_DIR}.")
    seen.add(name)
    stack.append(name)
    out.append(f"// ---- begin {name} ----\n")
    depth = 0  # preprocessor conditional nesting
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if PRAGMA_ONCE_RE.match(line):
            continue
        if IF_RE.match(line):
            depth += 1
        elif ENDIF_RE.match(line):
            depth -= 1
        m = INCLUDE_RE.match(line)
        if m and m.group(1) == '"':
            target = m.group(2)
            if not target.startswith("ctnn/"):
                raise AmalgamateError(
                    f'{name}:{lineno}: #include "{target}" is not a "ctnn/..." path; ctnn headers '
                    "include each other as \"ctnn/<folder>/<file>.hpp\".")
            if depth > 0:
                # Inlining once would put the header under this condition for every later user.
                raise AmalgamateError(
                    f'{name}:{lineno}: #include "{target}" inside #if/#ifdef cannot be inlined '
                    "safely; include it unconditionally.")
            if target in stack:
                raise AmalgamateError(
                    f"{name}:{lineno}: include cycle: {' -> '.join(stack + [target])}.")
            if target not in seen:
                inline(target, seen, out, stack)
            continue
        out.append(line.rstrip() + "\n")
    out.append(f"// ---- end {name} ----\n")
    stack.pop()


def amalgamate():
    seen, body = set(), []
    inline(ROOT_HEADER, seen, body, [])
    unreached = sorted(
        str(p.relative_to(INCLUDE_DIR)) for p in (INCLUDE_DIR / "ctnn").rglob("*.hpp")
        if str(p.relative_to(INCLUDE_DIR)) not in seen)
    for name in unreached:
        print(f"amalgamate.py: note: {name} is not reached from {ROOT_HEADER}, so it is not in "
              "the single header.", file=sys.stderr)
    return BANNER + "".join(body)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if the output file differs from what would be "
                             "generated")
    parser.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT,
                        help="file to write or check (default: single_include/ctnn.hpp)")
    args = parser.parse_args(argv)

    try:
        text = amalgamate()
    except AmalgamateError as e:
        print(f"amalgamate.py: error: {e}", file=sys.stderr)
        return 2

    output = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current == text:
            print(f"{output} is up to date.")
            return 0
        if current is None:
            print(f"{output} does not exist.", file=sys.stderr)
        else:
            diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(),
                                             "committed", "generated", lineterm="", n=1))
            print(f"{output} is out of date with include/ctnn/ ({len(diff)} diff lines; the first "
                  "ones follow):", file=sys.stderr)
            for line in diff[:40]:
                print("  " + line, file=sys.stderr)
        command = COMMAND if output.resolve() == DEFAULT_OUTPUT else f"{COMMAND} --output {output}"
        print(f"Regenerate it by running, from the repository root:\n    {command}",
              file=sys.stderr)
        return 1

    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"Wrote {output} ({text.count(chr(10))} lines).")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
