#!/bin/sh
# Installs what `make unit-aarch64` needs (the aarch64 cross compiler,
# qemu-user, and the arm64 -dev packages through multiarch) when run as
# root; otherwise prints the exact lines to run.  Quiet when all are present.
PKGS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user pkg-config \
libcurl4-openssl-dev:arm64 libjansson-dev:arm64 libyaml-dev:arm64 \
libcmocka-dev:arm64 libmicrohttpd-dev:arm64 libsystemd-dev:arm64"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
addarch=""
dpkg --print-foreign-architectures | grep -qx arm64 || addarch="dpkg --add-architecture arm64 && "
if [ "$(id -u)" = 0 ]; then
	echo "forge: installing missing packages for aarch64:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ [ -z "$addarch" ] || dpkg --add-architecture arm64; } &&
	apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null ||
		{ echo "forge: failed; run: ${addarch}apt-get update && apt-get install$missing" >&2; exit 1; }
else
	echo "forge: missing packages for aarch64; run as root:" >&2
	echo "  ${addarch}apt-get update && apt-get install$missing" >&2
	exit 1
fi
