#!/bin/sh
# Bundles forged and forgectl with every shared library they load and the
# dynamic loader, so that bench/scaling.sh runs on a machine that has none
# of forge's packages (the lent 16-core device):
#   sh bench/devkit.sh [BUILD-DIR [OUT-DIR]]     (build, build/devkit)
#   BIN=build/devkit LOADER=build/devkit/ld-linux-x86-64.so.2 \
#       sh bench/scaling.sh N RUNS "1 2 4 8 16" SUBMIT-ARGS...
set -eu
SRC=${1:-build} OUT=${2:-build/devkit}
for f in forged forgectl; do
	[ -x "$SRC/$f" ] || { echo "devkit: $SRC/$f is missing: run 'make' first" >&2; exit 1; }
done
rm -rf "$OUT"
mkdir -p "$OUT"
cp "$SRC/forged" "$SRC/forgectl" "$OUT/"
ldd "$SRC/forged" "$SRC/forgectl" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' |
	sort -u | while read -r lib; do cp -L "$lib" "$OUT/"; done
[ -e "$OUT/ld-linux-x86-64.so.2" ] || { echo "devkit: no ld-linux-x86-64.so.2 in ldd's output" >&2; exit 1; }
echo "devkit: $OUT ($(ls "$OUT" | wc -l) files, $(du -sh "$OUT" | cut -f1))"
