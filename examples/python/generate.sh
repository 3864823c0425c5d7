#!/usr/bin/env bash
# Generates the Python stubs of every .proto under <repo>/proto into
# examples/python/generated/ (not committed). Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
proto="$repo/proto"
out="$here/generated"
python="${PYTHON:-python3}"

if [[ ! -d "$proto" ]]; then
  echo "generate.sh: no proto/ directory at $proto" >&2
  exit 1
fi
if ! "$python" -c 'import grpc_tools.protoc' 2>/dev/null; then
  echo "generate.sh: grpc_tools is missing; run: $python -m pip install -r $here/requirements.txt" >&2
  exit 1
fi

mapfile -t files < <(cd "$proto" && find . -name '*.proto' -type f | sed 's|^\./||' | LC_ALL=C sort)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "generate.sh: no .proto files under $proto" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out"
# grpc_tools.protoc adds its bundled google/protobuf/*.proto to the include path itself.
(cd "$proto" && "$python" -m grpc_tools.protoc \
  -I "$proto" \
  --python_out="$out" \
  --grpc_python_out="$out" \
  --pyi_out="$out" \
  "${files[@]}")

echo "generated stubs for ${#files[@]} proto files in $out"
