#!/usr/bin/env bash
# Build SPECFEM3D Cartesian's three programs of a run with the internal mesher (xmeshfem3D,
# xgenerate_databases, xspecfem3D) natively, with gfortran and OpenMPI.
#
#   specfem/build-native.sh PREFIX [SOURCE]
#
# PREFIX   where the programs go (PREFIX/bin) with the source's LICENSE; e.g. .specfem
# SOURCE   a source archive (.tar.xz/.tar.gz) or an unpacked source tree; default: the archive
#          in specfem/vendor/ (SPECFEM3D v4.1.0, trimmed for offline builds).
#
# Needs (Debian): gfortran g++ make libopenmpi-dev openmpi-bin. MAKE_JOBS sets make's -j
# (default: the number of processors). The build runs in a temporary folder, and PREFIX/bin is
# replaced only after the three programs were built: a failed build leaves PREFIX as it was.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
prefix="${1:?usage: build-native.sh PREFIX [SOURCE]}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
source="${2:-$(find "$here/vendor" -maxdepth 1 -name 'specfem3d-*-src.tar.*' 2>/dev/null | sort | head -n 1)}"
if [ -n "$source" ] && [ -e "$source" ]; then
    source="$(cd "$(dirname "$source")" && pwd)/$(basename "$source")"
fi
if [ -z "$source" ] || [ ! -e "$source" ]; then
    echo "build-native.sh: no SPECFEM3D source (give an archive or a source tree)" >&2
    exit 2
fi
for tool in gfortran g++ make; do
    command -v "$tool" >/dev/null || {
        echo "build-native.sh: $tool is missing (apt-get install gfortran g++ make" \
             "libopenmpi-dev openmpi-bin)" >&2
        exit 2
    }
done
# OpenMPI's wrapper by its own name: a Python environment's MPICH may come first on PATH.
mpifc="${MPIFC:-$(command -v mpif90.openmpi || command -v mpif90 || true)}"
if [ -z "$mpifc" ]; then
    echo "build-native.sh: no mpif90 (apt-get install libopenmpi-dev openmpi-bin)" >&2
    exit 2
fi

build="$(mktemp -d "${TMPDIR:-/tmp}/specfem-build.XXXXXX")"
trap 'rm -rf "$build"' EXIT
if [ -d "$source" ]; then
    cp -a "$source/." "$build/src"
else
    mkdir "$build/src"
    tar -xf "$source" -C "$build/src" --strip-components=1
fi
cd "$build/src"
log="$build/build.log"
if ! { ./configure FC=gfortran CC=gcc CXX=g++ MPIFC="$mpifc" --with-mpi \
        && make -j"${MAKE_JOBS:-$(nproc)}" xmeshfem3D xgenerate_databases xspecfem3D; } \
        >"$log" 2>&1; then
    echo "build-native.sh: the SPECFEM3D build failed; the end of its log:" >&2
    tail -n 40 "$log" >&2
    exit 1
fi
for program in xmeshfem3D xgenerate_databases xspecfem3D; do
    test -x "bin/$program"
done
rm -rf "$prefix/bin.new"
mkdir "$prefix/bin.new"
cp bin/xmeshfem3D bin/xgenerate_databases bin/xspecfem3D "$prefix/bin.new/"
cp LICENSE "$prefix/LICENSE"
rm -rf "${prefix:?}/bin"
mv "$prefix/bin.new" "$prefix/bin"
echo "SPECFEM3D built with $mpifc: $(cd "$prefix/bin" && pwd)"
