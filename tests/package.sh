#!/bin/sh
# The Debian package on a fresh host: `make deb` twice (the checkout's
# version, and a later one), then in a debootstrap minbase bookworm tree
# booted with systemd-nspawn:
#   1  apt-get install ./forge_*.deb pulls the runtime libraries, creates
#      the forge user, starts forge.service as that user with its region in
#      /var/lib/forge (mode 0660, group forge)
#   2  a member of group forge runs sessions with forgectl (the packaged
#      configuration edited to a scripted provider: a conffile)
#   3  the upgrade to the later package with 20 sessions in flight restarts
#      forge; every session finishes, checksums right; the edited
#      configuration is kept
#   4  a package whose forged uses another region layout is refused by its
#      preinst with the reason; forge stays installed and running with
#      every session
#   5  apt-get remove keeps /etc/forge and the region; purge removes them
#
# Root; needs debootstrap and systemd-nspawn (installed when missing) and a
# Debian mirror (MIRROR, default debootstrap's).  The base tree is cached as
# a tarball in PACKAGE_CACHE (default /var/cache/forge-package): it holds
# nothing of forge's.  Not part of `make test` (minutes, network): `make
# test-package`, which CI runs.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=bookworm
BASE_PKGS=systemd,systemd-sysv,dbus
CACHE=${PACKAGE_CACHE:-/var/cache/forge-package}
TAR=$CACHE/$SUITE-minbase-systemd.tar
T=
R=
NSPAWN=
LEADER=

fail() { echo "package: FAIL: $*" >&2; exit 1; }
now() { date +%s; }

cleanup() {
	[ -n "$T" ] || return 0
	if [ -n "$NSPAWN" ] && kill -0 "$NSPAWN" 2>/dev/null; then
		[ -n "$LEADER" ] && nsenter -t "$LEADER" -a -- systemctl poweroff > /dev/null 2>&1
		i=0
		while kill -0 "$NSPAWN" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$NSPAWN" 2>/dev/null || true
	fi
	if grep -q " $T/" /proc/mounts; then
		echo "package: still mounted under $T; left in place" >&2
	else
		rm -rf --one-file-system "$T"
	fi
}
trap cleanup EXIT
trap 'echo "package: FAIL: interrupted" >&2; exit 1' INT TERM HUP

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, systemd-nspawn)"
start=$(now)
missing=
command -v debootstrap > /dev/null || missing="$missing debootstrap"
command -v systemd-nspawn > /dev/null || missing="$missing systemd-container"
if [ -n "$missing" ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing > /dev/null ||
		fail "cannot install$missing"
fi

T=$(mktemp -d /tmp/forge-package.XXXXXX)
R=$T/root

# ---- the packages --------------------------------------------------------
v1=$(cd "$ROOT" && dpkg-parsechangelog -S Version)
v2=$v1+upgrade1
DEB_OUT=$T/v1 sh "$ROOT/tools/deb.sh" > "$T/deb1.out" || fail "make deb: $(cat "$T/deb1.out")"
DEB_OUT=$T/v2 DEB_VERSION=$v2 sh "$ROOT/tools/deb.sh" > "$T/deb2.out" || fail "deb $v2"
DEB_OUT=$T/v3 DEB_VERSION=$v2+layout99 DEB_REGION_VERSION=99 sh "$ROOT/tools/deb.sh" > "$T/deb3.out" ||
	fail "deb with layout 99"
deb1=$(ls "$T"/v1/forge_*.deb)
size=$(du -k "$deb1" | cut -f1)
depends=$(dpkg-deb -f "$deb1" Depends)
lint=$(sed -n 's/^deb: lintian: //p' "$T/deb1.out")
t_build=$(now)

# ---- a fresh Debian, booted ------------------------------------------------
if [ -n "${PACKAGE_REFRESH:-}" ] || [ ! -f "$TAR" ]; then
	debootstrap --variant=minbase --include="$BASE_PKGS" "$SUITE" "$R" ${MIRROR:-} \
		> "$T/debootstrap.log" 2>&1 || { tail -20 "$T/debootstrap.log" >&2; fail "debootstrap"; }
	mkdir -p "$CACHE"
	tar -C "$R" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
else
	mkdir -p "$R"
	tar -C "$R" -xf "$TAR"
fi
mkdir -p "$R/root/debs"   # (the container gets a tmpfs /tmp)
cp "$deb1" "$T"/v2/forge_*.deb "$T"/v3/forge_*.deb "$R/root/debs/"
systemd-nspawn -q -D "$R" --boot --register=no --keep-unit --console=passive \
	--machine="forge-pkg-$$" > "$T/nspawn.log" 2>&1 &
NSPAWN=$!
i=0
until LEADER=$(pgrep -P "$NSPAWN" systemd) && [ -n "$LEADER" ] &&
	nsenter -t "$LEADER" -a -- systemctl is-system-running 2> /dev/null | grep -qE '^(running|degraded)$'; do
	kill -0 "$NSPAWN" 2>/dev/null || fail "systemd-nspawn exited: $(cat "$T/nspawn.log")"
	i=$((i + 1))
	[ $i -lt 300 ] || fail "the container did not boot in 30 s: $(cat "$T/nspawn.log")"
	sleep 0.1
done
t_boot=$(now)
inside() { nsenter -t "$LEADER" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C "$@"; }
as_alice() { inside runuser -u alice -- forgectl "$@"; }
# sess_stat KEY: forgectl stats' .sessions.KEY (no jq in the container)
sess_stat() { as_alice stats --json | tr -d ' \n' | sed -n "s/.*\"sessions\":{[^}]*\"$1\":\([0-9]*\).*/\1/p"; }
until_in() {   # until_in SECONDS CMD...: polls CMD in the container
	_n=$(( $1 * 10 )); shift
	while ! "$@" > /dev/null 2>&1; do
		_n=$((_n - 1)); [ $_n -gt 0 ] || return 1; sleep 0.1
	done
}

# ---- 1. install ------------------------------------------------------------
inside apt-get update -qq > "$T/apt.log" 2>&1 || fail "apt-get update: $(tail -5 "$T/apt.log")"
inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y /root/debs/$(basename "$deb1")" > "$T/install.log" 2>&1 ||
	fail "apt-get install: $(tail -20 "$T/install.log")"
for lib in libcurl4 libjansson4 libmicrohttpd12 libyaml-0-2; do
	inside dpkg-query -W -f='${Status}' "$lib" | grep -q "install ok installed" || fail "1: $lib not installed"
done
until_in 20 inside systemctl is-active forge || fail "1: forge.service not active: $(inside systemctl status forge --no-pager 2>&1 | tail -20)"
pid=$(inside systemctl show -p MainPID --value forge)
[ "$(inside stat -c %U "/proc/$pid")" = forge ] || fail "1: forged (pid $pid) runs as $(inside stat -c %U "/proc/$pid")"
until_in 10 inside test -f /var/lib/forge/region || fail "1: no region in /var/lib/forge"
[ "$(inside stat -c '%U:%G %a' /var/lib/forge/region)" = "forge:forge 660" ] ||
	fail "1: region $(inside stat -c '%U:%G %a' /var/lib/forge/region)"
for m in man1/forgectl.1.gz man1/mock-llm.1.gz man8/forged.8.gz; do
	inside test -f "/usr/share/man/$m" || fail "1: no man page $m"
done
echo "1: apt-get install pulled the libraries, forge.service runs as forge, region forge:forge 0660 ($(($(now) - t_boot)) s)"

# ---- 2. forgectl as a member of group forge ----------------------------------
inside useradd -m -G forge alice
inside sed -i 's/^  default: mock$/  default: scripted/' /etc/forge/forge.yaml
inside forged --check-config -c /etc/forge/forge.yaml > /dev/null || fail "2: the edited configuration"
inside systemctl restart forge
until_in 20 inside systemctl is-active forge || fail "2: forge did not restart"
until_in 20 as_alice status || fail "2: forgectl status as alice: $(as_alice status 2>&1)"
as_alice submit --workflow react --prompt "what is 2+2?" --count 5 > "$T/ids" || fail "2: submit as alice"
until_in 30 as_alice wait --timeout 0 || fail "2: not done: $(as_alice stats 2>&1)"
[ "$(sess_stat done)" = 5 ] || fail "2: $(as_alice stats 2>&1)"
inside runuser -u nobody -- forgectl status > /dev/null 2>&1 && fail "2: a user outside group forge used forgectl"
echo "2: a member of group forge ran 5 react sessions with forgectl; others cannot"

# ---- 3. upgrade with sessions in flight ---------------------------------------
pid1=$(inside systemctl show -p MainPID --value forge)
as_alice submit --workflow synthetic --steps 60 --delay-us 50000 --count 20 > "$T/ids2" || fail "3: submit"
sleep 0.5   # (under way: 3 s each)
[ "$(sess_stat done)" = 5 ] || fail "3: the 20 sessions were not in flight: $(as_alice stats 2>&1)"
inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y /root/debs/$(basename "$T"/v2/forge_*.deb)" > "$T/upgrade.log" 2>&1 ||
	fail "3: upgrade: $(tail -20 "$T/upgrade.log")"
[ "$(inside dpkg-query -W -f='${Version}' forge)" = "$v2" ] || fail "3: not upgraded"
pid2=$(inside systemctl show -p MainPID --value forge)
[ "$pid2" != "$pid1" ] && [ "$pid2" != 0 ] || fail "3: forge was not restarted ($pid1 -> $pid2)"
carried=$((25 - $(sess_stat done)))   # unfinished when the new forged took over
until_in 60 as_alice wait --timeout 0 || fail "3: not done after the upgrade: $(as_alice stats 2>&1)"
[ "$(sess_stat done)" = 25 ] && [ "$(sess_stat failed)" = 0 ] || fail "3: after the upgrade: $(as_alice stats 2>&1)"
while read -r id; do
	s=$(as_alice session "$id" --json | tr -d ' \n')
	c=$(echo "$s" | sed -n 's/.*"checksum":"\([0-9a-f]*\)".*/\1/p')
	e=$(echo "$s" | sed -n 's/.*"checksum_expected":"\([0-9a-f]*\)".*/\1/p')
	[ -n "$c" ] && [ "$c" = "$e" ] || fail "3: session $id: $s"
done < "$T/ids2"
as_alice check > "$T/check.out" || fail "3: check: $(cat "$T/check.out")"
inside grep -q "^  default: scripted$" /etc/forge/forge.yaml || fail "3: the edited configuration was replaced"
echo "3: upgraded $v1 -> $v2 with 20 sessions in flight: forge restarted ($carried of them unfinished when the new forged took over), all 20 done with the right checksums, the edited forge.yaml kept"

# ---- 4. a package that cannot attach to the region is refused -------------------
inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y /root/debs/$(basename "$T"/v3/forge_*.deb)" > "$T/refused.log" 2>&1 &&
	fail "4: a package of another region layout was installed"
grep -q "forge: /var/lib/forge/region has region layout [0-9]*; this forge uses layout 99 and cannot attach to it." "$T/refused.log" ||
	fail "4: no reason given: $(tail -20 "$T/refused.log")"
# (dpkg's abort-upgrade restarts the old one: its sessions are all kept)
[ "$(inside dpkg-query -W -f='${Version}' forge)" = "$v2" ] || fail "4: forge $v2 was replaced"
until_in 20 inside systemctl is-active forge || fail "4: forge $v2 is not running after the refusal"
until_in 10 as_alice check || fail "4: check: $(as_alice check 2>&1)"
[ "$(sess_stat done)" = 25 ] || fail "4: sessions: $(as_alice stats 2>&1)"
echo "4: a package whose forged uses another region layout refused, naming why; forge $v2 kept running"

# ---- 5. remove keeps the state, purge removes it ----------------------------------
inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get remove -y forge" > "$T/remove.log" 2>&1 || fail "5: remove: $(tail -10 "$T/remove.log")"
inside test ! -e /usr/bin/forged || fail "5: forged still installed"
inside systemctl is-active forge > /dev/null 2>&1 && fail "5: forge still running after remove"
inside test -f /etc/forge/forge.yaml && inside test -f /var/lib/forge/region || fail "5: remove deleted the configuration or the region"
inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y forge" > "$T/purge.log" 2>&1 || fail "5: purge: $(tail -10 "$T/purge.log")"
inside test ! -e /etc/forge/forge.yaml && inside test ! -e /var/lib/forge || fail "5: purge left /etc/forge or /var/lib/forge"
echo "5: apt-get remove kept /etc/forge and the region; purge removed them"

echo "package: forge_${v1} ($size KiB; Depends: $depends; lintian: $lint): installed on a fresh Debian 12 booted with systemd-nspawn, used by group forge, upgraded with 20 sessions in flight (none lost), a layout change refused, removed, purged (build $((t_build - start)) s, in all $(($(now) - start)) s)"
