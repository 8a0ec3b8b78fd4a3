#!/usr/bin/env bash
# test-deps.sh BIN... -- DEB...: make sure the interop tests' programs are
# installed. As root, install the Debian packages; otherwise print the exact
# command and fail, so that `make test` never silently skips a real peer.
set -euo pipefail
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
shift || true
debs=("$@")
missing=0
for b in "${bins[@]}"; do
	command -v "$b" >/dev/null 2>&1 || missing=1
done
[ "$missing" = 0 ] && exit 0
cmd="apt-get install -y ${debs[*]}"
# quiet_services: Debian enables the kamailio service on install; the tests
# run their own Kamailio on a free port, and a system one on 5060 would take
# the port `make run` uses. Only a service this script just installed.
quiet_services() {
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		if systemctl is-enabled kamailio >/dev/null 2>&1; then
			echo "test-deps: disabling the kamailio system service (tests start their own)"
			$1 systemctl disable --now kamailio || true
		fi
	fi
}
if [ "$(id -u)" = 0 ]; then
	echo "test-deps: installing ${debs[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! $cmd; then
		apt-get update
		$cmd
	fi
	quiet_services ""
	exit 0
fi
if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	sudo -n $cmd || { sudo -n apt-get update && sudo -n $cmd; }
	quiet_services "sudo -n"
	exit 0
fi
echo "test-deps: the interop tests need: ${debs[*]}" >&2
echo "test-deps: run as root:  sudo $cmd" >&2
exit 1
