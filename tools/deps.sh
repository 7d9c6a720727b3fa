#!/bin/sh
# Installs the Debian packages forge needs to build and test, when run as
# root; otherwise prints the exact line to run.  Quiet when all are present.
PKGS="build-essential pkg-config libcurl4-openssl-dev libjansson-dev libyaml-dev \
libcmocka-dev libmicrohttpd-dev libsystemd-dev jq curl wrk iproute2 procps clang fiu-utils libfiu-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
	echo "forge: installing missing Debian packages:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null ||
		{ echo "forge: apt-get install failed; run: apt-get install$missing" >&2; exit 1; }
else
	echo "forge: missing Debian packages; run as root:" >&2
	echo "  apt-get install$missing" >&2
	exit 1
fi
