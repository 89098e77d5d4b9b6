#!/usr/bin/env bash
# onnxruntime.sh [DIR] — fetches ONNX Runtime's shared library for the AI
# tier (`--features ai`) from the PyPI wheel, which needs only glibc and
# libstdc++ (no Python at run time), and prints the library's path.
# ort cannot download its runtime here; this is the offline recipe.
set -euo pipefail
VERSION=${ORT_VERSION:-1.31.1}
DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)/target/onnxruntime}
lib="$DIR/libonnxruntime.so.$VERSION"
if [ ! -f "$lib" ]; then
  mkdir -p "$DIR"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  command -v pip3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null; }
  pip3 download "onnxruntime==$VERSION" --no-deps --only-binary=:all: -d "$tmp" -q >&2
  python3 - "$tmp" "$DIR" "$VERSION" <<'PY'
import glob, sys, zipfile
tmp, out, version = sys.argv[1:]
wheel = glob.glob(f"{tmp}/onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read(f"onnxruntime/capi/libonnxruntime.so.{version}")
with open(f"{out}/libonnxruntime.so.{version}", "wb") as f:
    f.write(data)
PY
fi
echo "$lib"
