#!/usr/bin/env bash
# onnx_conformance.sh [BUILD_DIR]: runs test_onnx_conformance and copies the table it computed
# (BUILD_DIR/tests/onnx/onnx_conformance_table.md) into README.md between the
# onnx-conformance markers. BUILD_DIR defaults to build/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
cmake --build "$build" --target test_onnx_conformance
"$build/tests/onnx/test_onnx_conformance" > /dev/null || true  # writes the table even when it differs
python3 - "$build/tests/onnx/onnx_conformance_table.md" <<'PY'
import sys
table = open(sys.argv[1]).read()
text = open("README.md").read()
b, e = "<!-- onnx-conformance:begin -->\n", "<!-- onnx-conformance:end -->"
i, j = text.index(b) + len(b), text.index(e)
open("README.md", "w").write(text[:i] + table + text[j:])
print("README.md: ONNX conformance table updated")
PY
"$build/tests/onnx/test_onnx_conformance"
