#!/bin/sh
# make deb: build/deb/forge_VERSION_ARCH.deb with Debian's own tools
# (dpkg-buildpackage, debhelper: debian/), from a copy of the source tree
# (the files git tracks or would track) so that nothing is written beside
# the checkout; then lintian.  Prints the package's file, size, Depends line
# and lintian's verdict.  Installs debhelper, dpkg-dev and lintian when run
# as root; otherwise prints the line to run.
#   DEB_OUT=DIR             where the package goes (default build/deb)
#   DEB_VERSION=V           (tests) the copy's changelog gets an entry for V
#   DEB_REGION_VERSION=N    (tests) the copy's forged uses region layout N
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${DEB_OUT:-$ROOT/build/deb}
need="debhelper dpkg-dev lintian fakeroot pkgconf libcurl4-openssl-dev libjansson-dev libyaml-dev libmicrohttpd-dev libsystemd-dev"
missing=""
for p in $need; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "deb: installing$missing" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing > /dev/null ||
			{ echo "deb: apt-get install failed; run: apt-get install$missing" >&2; exit 1; }
	else
		echo "deb: missing Debian packages; run as root: apt-get install$missing" >&2
		exit 1
	fi
fi
cd "$ROOT"
ver=${DEB_VERSION:-$(dpkg-parsechangelog -S Version)}
src=$OUT/forge-$ver
rm -rf "$src"
mkdir -p "$src"
# the source as git sees it (a tarball of a checkout works too)
if git rev-parse --git-dir > /dev/null 2>&1; then
	git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t "$src"
else
	tar --exclude=./build -cf - . | tar -xf - -C "$src"
fi
if [ -n "${DEB_VERSION:-}" ]; then
	{ printf 'forge (%s) unstable; urgency=medium\n\n  * A build for tests.\n\n -- %s  %s\n\n' \
		"$DEB_VERSION" "$(dpkg-parsechangelog -S Maintainer)" "$(date -R)"
	  cat debian/changelog; } > "$src/debian/changelog"
fi
if [ -n "${DEB_REGION_VERSION:-}" ]; then
	sed -i "s/^#define FG_REGION_VERSION [0-9]*u/#define FG_REGION_VERSION ${DEB_REGION_VERSION}u/" \
		"$src/include/forge/region.h"
fi
(cd "$src" && dpkg-buildpackage -us -uc -b > "$OUT/build.log" 2>&1) ||
	{ tail -30 "$OUT/build.log" >&2; echo "deb: dpkg-buildpackage failed (log: $OUT/build.log)" >&2; exit 1; }
arch=$(dpkg --print-architecture)
deb=$OUT/forge_${ver}_$arch.deb
[ -f "$deb" ] || { echo "deb: $deb was not made" >&2; exit 1; }
rm -rf "$src" "$OUT"/forge-dbgsym_* "$OUT"/*.buildinfo "$OUT"/*.changes
echo "deb: $deb ($(du -k "$deb" | cut -f1) KiB)"
echo "deb: Depends: $(dpkg-deb -f "$deb" Depends)"
# lintian: every tag it gives is either fixed or explained in
# debian/source/lintian-overrides / debian/forge.lintian-overrides
if lintian --allow-root --fail-on error,warning --display-info --show-overrides "$deb" \
		> "$OUT/lintian.log" 2>&1; then
	echo "deb: lintian: no errors or warnings; $(grep -c '^[IPX]:' "$OUT/lintian.log" || true) info tags," \
	     "$(grep -c '^O:' "$OUT/lintian.log" || true) overridden (debian/forge.lintian-overrides)"
else
	cat "$OUT/lintian.log" >&2
	echo "deb: lintian found errors or warnings" >&2
	exit 1
fi
