#!/bin/sh
# The first `make` on a fresh Debian machine builds forge.  A debootstrap
# minbase bookworm tree with only make, gcc and libc6-dev gets the source
# tree (tracked and untracked, not ignored) in /src; `make -j2` run once as
# root in it must install the rest (tools/deps.sh) and leave build/forged,
# build/forgectl and build/mock-llm.  Then: a second `make -s` says nothing,
# `make unit` passes, and a .pc file gone after deps stops the build with
# the package's name rather than a link error.
#
# Root; needs debootstrap (installed when missing) and a Debian mirror
# (MIRROR, default debootstrap's).  The base tree is cached as a tarball in
# FRESH_CACHE (default /var/cache/forge-fresh): it holds nothing of forge's,
# so reusing it still starts without the packages; FRESH_REFRESH=1 rebuilds
# it.  Not part of `make test` (minutes, network); `make test-fresh` runs it.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
BASE_PKGS=make,gcc,libc6-dev
CACHE=${FRESH_CACHE:-/var/cache/forge-fresh}
TAR=$CACHE/$SUITE-minbase-$(echo "$BASE_PKGS" | tr , -).tar
T=
R=

fail() { echo "fresh_machine: FAIL: $*" >&2; exit 1; }
now() { date +%s; }

cleanup() {
	[ -n "$R" ] || return 0
	# processes this test started inside the tree, if any are left
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	for m in dev/shm dev/pts proc; do
		mountpoint -q "$R/$m" 2>/dev/null && { umount "$R/$m" || umount -l "$R/$m"; }
	done
	if grep -q " $T/" /proc/mounts; then
		echo "fresh_machine: still mounted under $T; left in place" >&2
	else
		rm -rf --one-file-system "$T"
	fi
}
trap cleanup EXIT
trap 'echo "fresh_machine: FAIL: interrupted" >&2; exit 1' INT TERM HUP

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mount)"
cd "$ROOT"
start=$(now)

if ! command -v debootstrap > /dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > /dev/null ||
		fail "cannot install debootstrap"
fi

T=$(mktemp -d /tmp/forge-fresh.XXXXXX)
R=$T/root
t0=$(now)
if [ -n "${FRESH_REFRESH:-}" ] || [ ! -f "$TAR" ]; then
	debootstrap --variant=minbase --include="$BASE_PKGS" "$SUITE" "$R" ${MIRROR:-} \
		> "$T/debootstrap.log" 2>&1 || { tail -20 "$T/debootstrap.log" >&2; fail "debootstrap"; }
	mkdir -p "$CACHE"
	tar -C "$R" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
	how="debootstrap"
else
	mkdir "$R" && tar -C "$R" -xf "$TAR"
	how="cached tree"
fi
t_base=$(( $(now) - t0 ))

# the tree must really lack what deps.sh installs, or the test proves nothing
chroot "$R" dpkg-query -W -f='${Status}' libjansson-dev 2>/dev/null | grep -q "ok installed" &&
	fail "$TAR already has libjansson-dev"
cp -L /etc/resolv.conf "$R/etc/resolv.conf"
mount -t proc proc "$R/proc"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
mkdir -p "$R/dev/shm" && mount -t tmpfs -o size=1g tmpfs "$R/dev/shm"

mkdir "$R/src"
git ls-files -co --exclude-standard | while IFS= read -r f; do
	[ -e "$f" ] && printf '%s\n' "$f"
done | tar -cf - -T - | tar -C "$R/src" -xf -

# a clean environment: nothing of this shell's make (MAKEFLAGS, FORGE_*) leaks in
inroot() {
	timeout --foreground 900 env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 chroot "$R" sh -c "cd /src && $1"
}

t0=$(now)
inroot "make -j2" > "$T/make1.log" 2>&1 || {
	grep -v "^debconf" "$T/make1.log" | tail -30 >&2; fail "the first make failed"; }
t_make=$(( $(now) - t0 ))
for b in forged forgectl mock-llm; do
	[ -x "$R/src/build/$b" ] || fail "the first make did not build build/$b"
done

out=$(inroot "make -s" 2>&1) || fail "second make: $out"
[ -z "$out" ] || fail "a second make -s is not quiet: $out"

t0=$(now)
inroot "make -j2 unit" > "$T/unit.log" 2>&1 || { tail -30 "$T/unit.log" >&2; fail "make unit"; }
t_unit=$(( $(now) - t0 ))
nunit=$(grep -c '^\[  PASSED  \]' "$T/unit.log") || fail "make unit ran no test: $(tail -5 "$T/unit.log")"

# pkg-config failing after deps: the build stops naming the package
inroot 'pc=$(pkg-config --variable pcfiledir jansson) && mv "$pc/jansson.pc" /root/' ||
	fail "cannot hide jansson.pc"
if inroot "make B=build/nopc" > "$T/nopc.log" 2>&1; then
	fail "make succeeded without jansson.pc"
fi
grep -q "undefined reference" "$T/nopc.log" && fail "a link error, not a clear message: $(tail -3 "$T/nopc.log")"
grep -q "cannot find jansson.*libjansson-dev" "$T/nopc.log" ||
	fail "no clear message naming jansson/libjansson-dev: $(tail -3 "$T/nopc.log")"

echo "fresh_machine: PASS: first make -j2 on a $SUITE minbase tree built forged, forgectl," \
     "mock-llm; $nunit unit-test programs passed ($how ${t_base} s, first make ${t_make} s incl. apt," \
     "make unit ${t_unit} s, total $(( $(now) - start )) s)"
