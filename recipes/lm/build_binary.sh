#!/usr/bin/env bash
# Compiles KenLM's build_binary, which converts an ARPA file into KenLM's binary format (memory-mapped: it loads
# in milliseconds instead of being parsed), from the kenlm source package on PyPI. Needs g++ and zlib's headers
# (Debian: g++ zlib1g-dev), not Boost: only the query side of KenLM is compiled.
#   bash recipes/lm/build_binary.sh [FOLDER]      # writes FOLDER/build_binary (default data/kenlm), once
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-data/kenlm}")
version=0.3.0
sha256=c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8
[ -x "$out/build_binary" ] && exit 0
for tool in g++; do
  command -v "$tool" >/dev/null || { echo "build_binary.sh: $tool not found (Debian: apt-get install g++ zlib1g-dev)" >&2; exit 1; }
done
[ -f /usr/include/zlib.h ] || { echo "build_binary.sh: zlib.h not found (Debian: apt-get install zlib1g-dev)" >&2; exit 1; }
python=${PYTHON:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-build-isolation: pip only reads the package's metadata with the setuptools already installed.
"$python" -m pip download -q --no-deps --no-binary :all: --no-build-isolation "kenlm==$version" -d "$tmp"
echo "$sha256  $tmp/kenlm-$version.tar.gz" | sha256sum -c --quiet
tar xzf "$tmp/kenlm-$version.tar.gz" -C "$tmp"
cd "$tmp/kenlm-$version"
mkdir -p "$out"
# KenLM's query library (lm/, util/) without its tests and other programs; orders up to 6 as in flashlight's KenLM.
g++ -O2 -std=c++11 -w -DNDEBUG -DKENLM_MAX_ORDER=6 -DHAVE_ZLIB -I. lm/build_binary_main.cc \
    $(ls lm/*.cc util/*.cc | grep -v -e _test -e _main) util/double-conversion/*.cc \
    -o "$out/build_binary.tmp" -lz -lpthread
mv "$out/build_binary.tmp" "$out/build_binary"
echo "wrote $out/build_binary"
