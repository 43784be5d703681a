#!/usr/bin/env bash
# Builds HailoRT's libhailort and its Python binding (hailo_platform) from a HailoRT source tree,
# offline, with Debian's libraries; no hailortcli, no service, no driver. Needs no Hailo chip: the
# result reads HEF files (hailo_platform.HEF), which is what `make test-hailort` runs.
#
#   scripts/build_hailort.sh HAILORT_SRC [OUT]
#
# HAILORT_SRC: a work tree of github.com/hailo-ai/hailort (branch hailo8 = HailoRT 4.23 was the one
# built and recorded, docs/measured/hailort_build.md). OUT (default: HAILORT_SRC/../hailort_build,
# keep it outside this repository) receives
#   OUT/lib/libhailort.so*   OUT/include/hailo/   OUT/python/hailo_platform (with _pyhailort)
#   OUT/python/ (also HailoRT's pure-Python dependencies)   OUT/BUILD_INFO.txt
# Use it with PYTHONPATH=OUT/python (the Makefile's test-hailort target takes HAILORT_BUILD=OUT).
#
# Offline: HailoRT's own switch HAILO_OFFLINE_COMPILATION (hailort/CMakeLists.txt: sets
# FETCHCONTENT_FULLY_DISCONNECTED) plus HAILO_EXTERNALS_EXCLUDE_TARGETS, with the targets its
# FetchContent scripts would make defined from Debian packages by scripts/hailort_system_deps.cmake.
# Only the pure-Python packages HailoRT's binding imports come from PyPI (pip).
# Environment: PYTHON (the interpreter the binding is built for; default python3), JOBS (default 2),
# NICE (default 10), HAILORT_COMMIT (recorded in BUILD_INFO.txt when HAILORT_SRC is no git checkout).
set -euo pipefail

usage() { echo "usage: $0 HAILORT_SRC [OUT]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
SRC=$(cd "$1" && pwd) || usage
[[ -f $SRC/hailort/CMakeLists.txt && -d $SRC/hailort/libhailort/bindings/python ]] \
    || { echo "error: $SRC is not a HailoRT source tree (no hailort/CMakeLists.txt); pass the work tree of" \
              "github.com/hailo-ai/hailort" >&2; exit 2; }
OUT=${2:-$(dirname "$SRC")/hailort_build}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
case "$OUT/" in "$REPO"/*) echo "error: OUT ($OUT) is inside this repository; choose a folder outside it" >&2
                           exit 2 ;; esac
PYTHON=${PYTHON:-python3}
JOBS=${JOBS:-2}
NICE=${NICE:-10}
DEBIAN_PACKAGES="cmake g++ libprotobuf-dev protobuf-compiler libeigen3-dev pybind11-dev libspdlog-dev libfmt-dev
 libxxhash-dev libreaderwriterqueue-dev"
PYPI_PACKAGES="netaddr netifaces argcomplete contextlib2 future"  # setup.py install_requires, less numpy

missing=$(for p in $DEBIAN_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || printf '%s ' "$p"; done)
[[ -z $missing ]] || { echo "error: missing Debian packages: $missing-- install them with:" \
                            "apt-get install --no-install-recommends $missing" >&2; exit 2; }
PY_VERSION=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
PY_EXE=$("$PYTHON" -c 'import sys; print(sys.executable)')
VERSION=$(sed -n 's/^set(HAILORT_\(MAJOR\|MINOR\|REVISION\)_VERSION *\([0-9]*\))/\2/p' \
          "$SRC/hailort/libhailort/CMakeLists.txt" | paste -sd.)
START=$(date +%s)
run() { echo "+ $*"; nice -n "$NICE" "$@"; }

# spdlog/fmt/bundled/{core,format}.h -> libfmt (hailort_system_deps.cmake says why)
mkdir -p "$OUT/fmt-compat/spdlog/fmt/bundled"
WHY='spdlog without its bundled fmt (Debian): forward to libfmt-dev'
for h in core format; do
    header="$OUT/fmt-compat/spdlog/fmt/bundled/$h.h"
    printf '#pragma once\n// %s\n#include <fmt/%s.h>\n' "$WHY" "$h" > "$header.new"
    cmp -s "$header.new" "$header" && rm "$header.new" || mv "$header.new" "$header"  # unchanged: no rebuild
done

OFFLINE=(-DCMAKE_BUILD_TYPE=Release -DHAILO_OFFLINE_COMPILATION=ON -DFETCHCONTENT_FULLY_DISCONNECTED=ON
         -DHAILO_EXTERNALS_EXCLUDE_TARGETS=ON)
run cmake -S "$SRC" -B "$OUT/build-libhailort" "${OFFLINE[@]}" \
    -DHAILO_BUILD_SERVICE=OFF -DHAILO_BUILD_EXAMPLES=OFF -DHAILO_BUILD_GSTREAMER=OFF -DHAILO_BUILD_UT=OFF \
    -DCMAKE_PROJECT_HailoRT_INCLUDE="$HERE/hailort_system_deps.cmake" -DHAILO_FMT_COMPAT_DIR="$OUT/fmt-compat"
run cmake --build "$OUT/build-libhailort" --target libhailort -j "$JOBS"

mkdir -p "$OUT/lib" "$OUT/include"
cp -a "$OUT/build-libhailort/hailort/libhailort/src/"libhailort.so* "$OUT/lib/"
rm -rf "$OUT/include/hailo" && cp -a "$SRC/hailort/libhailort/include/hailo" "$OUT/include/"

run cmake -S "$SRC/hailort/libhailort/bindings/python/src" -B "$OUT/build-pyhailort" "${OFFLINE[@]}" \
    -DPYBIND11_PYTHON_VERSION="$PY_VERSION" -DPYTHON_EXECUTABLE="$PY_EXE" \
    -DLIBHAILORT_PATH="$OUT/lib/libhailort.so.$VERSION" -DHAILORT_INCLUDE_DIR="$OUT/include" \
    -DCMAKE_PROJECT_pyhailort_INCLUDE="$HERE/hailort_system_deps.cmake" \
    -DCMAKE_CXX_FLAGS="-I$OUT/fmt-compat -I/usr/include/readerwriterqueue"
run cmake --build "$OUT/build-pyhailort" --target _pyhailort -j "$JOBS"

rm -rf "$OUT/python" && mkdir -p "$OUT/python"
cp -a "$SRC/hailort/libhailort/bindings/python/platform/hailo_platform" "$OUT/python/"
cp "$OUT/build-pyhailort/"_pyhailort*.so "$OUT/python/hailo_platform/pyhailort/"
run "$PY_EXE" -m pip install --quiet --no-deps --target "$OUT/python" $PYPI_PACKAGES

COMMIT=${HAILORT_COMMIT:-$(git -C "$SRC" rev-parse HEAD 2>/dev/null || echo "unknown (set HAILORT_COMMIT)")}
{
    echo "hailort_version: $VERSION"
    echo "hailort_commit: $COMMIT"
    echo "python: $PY_EXE ($PY_VERSION)"
    echo "build_seconds: $(( $(date +%s) - START )) (jobs $JOBS, nice $NICE)"
    echo "debian: $(dpkg-query -W -f='${Package}=${Version} ' $DEBIAN_PACKAGES)"
    echo "pypi: $("$PY_EXE" -m pip list --path "$OUT/python" --format=freeze 2>/dev/null | paste -sd' ')"
} > "$OUT/BUILD_INFO.txt"
cat "$OUT/BUILD_INFO.txt"
HAILORT_LOGGER_PATH="$OUT" PYTHONPATH="$OUT/python" "$PY_EXE" -c 'import hailo_platform as h; print("hailo_platform", h.__version__, h.__file__)'
