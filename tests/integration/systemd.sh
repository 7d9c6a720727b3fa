#!/bin/sh
# make install (PREFIX, DESTDIR) puts the programs, the unit and the
# configuration in place, and systemd-analyze verify finds nothing to say
# about the unit (it exits 0 even on bad values, so its output must be empty).
. "$(dirname "$0")/../lib.sh"
command -v systemd-analyze > /dev/null || { echo "systemd: skipped: systemd-analyze is not installed"; exit 0; }
R=$T/root
make -s -C "$ROOT" install DESTDIR="$R" PREFIX=/usr/local > "$T/install.out" 2>&1 || fail "make install: $(cat "$T/install.out")"
for f in usr/local/bin/forged usr/local/bin/forgectl usr/local/bin/mock-llm etc/forge/forge.yaml lib/systemd/system/forge.service; do
	[ -f "$R/$f" ] || fail "make install did not install $f"
done
"$R/usr/local/bin/forged" --check-config -c "$R/etc/forge/forge.yaml" > /dev/null || fail "installed config invalid"
mkdir -p "$T/units"
sed "s|/usr/local/bin/|$R/usr/local/bin/|g; s|/etc/forge/|$R/etc/forge/|g" \
	"$R/lib/systemd/system/forge.service" > "$T/units/forge.service"
out=$(systemd-analyze verify "$T/units/forge.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
for k in "Type=notify" "WatchdogSec=" "ExecReload=" "Restart=on-failure" "NoNewPrivileges=yes" \
	 "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "StateDirectory=forge" "LimitNOFILE="; do
	grep -q "^$k" "$T/units/forge.service" || fail "unit lacks $k"
done
grep -qE "^(DynamicUser|RemoveIPC)=yes" "$T/units/forge.service" && fail "DynamicUser/RemoveIPC would delete the region"
grep -q "^  path: /var/lib/forge/region$" "$R/etc/forge/forge.yaml" ||
	fail "the installed configuration does not keep the region in the state directory"
grep -q "^  durability: batch$" "$R/etc/forge/forge.yaml" ||
	fail "the installed configuration does not flush the region (durability: batch)"
echo "systemd: make install DESTDIR works, systemd-analyze verify clean, hardening present"
