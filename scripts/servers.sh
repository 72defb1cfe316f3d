# shellcheck shell=bash
# Servers for the sink tests: InfluxDB 1.x (Debian influxdb, binary influxd),
# Prometheus 2.x (Debian prometheus, with promtool; also the remote_write
# receiver) and VictoriaMetrics single-node (Debian victoria-metrics, a
# remote_write receiver). scripts/test.sh
# sources this file before go test; it also works on its own:
#
#   source scripts/servers.sh && go test -race -count=1 ./sink/...
#
# It installs the packages when they are missing (as root with apt-get;
# apt-get update only when an install is needed) without letting the
# packages start their services, and exports the binaries' paths. The Go
# tests (internal/sinktest) start each server themselves as a child process
# bound to 127.0.0.1 on a free port, with its data in the test's temporary
# directory, and stop it by PID; a test stops and restarts its own influxd.
# Without the variables the tests skip and say why.
#
#   METRICSD_TEST_INFLUXD     influxd
#   METRICSD_TEST_PROMETHEUS  prometheus
#   METRICSD_TEST_PROMTOOL    promtool
#   METRICSD_TEST_VICTORIAMETRICS  victoria-metrics
#   METRICSD_TEST_OTLPRECEIVER     the OpenTelemetry Collector's OTLP receiver
#                                  in a test binary, built here from the
#                                  module internal/sinktest/otlpreceiver
#                                  (~3 min the first time on a new machine,
#                                  its modules downloaded; cached after)
#
# servers_stop (test.sh's EXIT trap calls it) stops any service process the
# package install itself started, by PID; it is safe to call twice.
# Sourced under test.sh's `set -euo pipefail`: nothing here may fail the
# caller.

_servers_pids_started_by_install=()

# _servers_pids_of EXE...: PIDs whose executable is one of EXE.
_servers_pids_of() {
	local p exe e
	for p in /proc/[0-9]*; do
		exe=$(readlink "$p/exe" 2>/dev/null) || continue
		for e in "$@"; do
			[ "$exe" = "$e" ] && echo "${p#/proc/}"
		done
	done
	return 0
}

_servers_install() {
	local packages=(influxdb prometheus victoria-metrics) missing=() p
	if ! command -v dpkg-query >/dev/null; then
		return 0
	fi
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "servers.sh: SKIP installing ${missing[*]}: not root or no apt-get; the sink tests that need them will skip"
		return 0
	fi
	echo "servers.sh: installing ${missing[*]}"
	local before made_policy=""
	before=" $(_servers_pids_of /usr/bin/influxd /usr/bin/prometheus /usr/bin/victoria-metrics | tr '\n' ' ') "
	# Keep the packages from starting their services (no systemd here, but
	# an init script could still start one): policy-rc.d exit 101.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
	fi
	local log
	log=$(mktemp)
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l RUNLEVEL=1 apt-get install -y -qq "${missing[@]}"; } >"$log" 2>&1; then
		cat "$log"
		echo "servers.sh: installing ${missing[*]} failed; the sink tests that need them will skip"
	fi
	rm -f "$log"
	[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
	# Should the install have started a server anyway, remember its PID.
	for p in $(_servers_pids_of /usr/bin/influxd /usr/bin/prometheus /usr/bin/victoria-metrics); do
		case "$before" in *" $p "*) ;; *) _servers_pids_started_by_install+=("$p") ;; esac
	done
	if [ ${#_servers_pids_started_by_install[@]} -gt 0 ]; then
		echo "servers.sh: the install started PIDs ${_servers_pids_started_by_install[*]}; stopping them"
		servers_stop
	fi
	return 0
}

servers_stop() {
	local p
	for p in "${_servers_pids_started_by_install[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	_servers_pids_started_by_install=()
	[ -n "${_servers_bindir:-}" ] && rm -rf "$_servers_bindir"
	_servers_bindir=
	return 0
}

# _servers_build_otlpreceiver builds the OTLP receiver test binary (a module
# of its own, so the library's go.mod stays free of the Collector).
_servers_build_otlpreceiver() {
	local src
	src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/internal/sinktest/otlpreceiver"
	if ! command -v go >/dev/null || [ ! -f "$src/go.mod" ]; then
		echo "servers.sh: cannot build the OTLP receiver (no go, or no $src); the OTLP sink tests will skip"
		return 0
	fi
	_servers_bindir=$(mktemp -d)
	local log="$_servers_bindir/build.log"
	if (cd "$src" && GOTOOLCHAIN=${GOTOOLCHAIN:-local} go build -o "$_servers_bindir/otlpreceiver" .) >"$log" 2>&1; then
		export METRICSD_TEST_OTLPRECEIVER="$_servers_bindir/otlpreceiver"
	else
		cat "$log"
		echo "servers.sh: building the OTLP receiver failed; the OTLP sink tests will skip"
	fi
	return 0
}

_servers_install || true
_servers_build_otlpreceiver || true
for _servers_v in METRICSD_TEST_INFLUXD:influxd METRICSD_TEST_PROMETHEUS:prometheus METRICSD_TEST_PROMTOOL:promtool METRICSD_TEST_VICTORIAMETRICS:victoria-metrics; do
	_servers_bin=$(command -v "${_servers_v#*:}" 2>/dev/null || true)
	if [ -n "$_servers_bin" ]; then
		export "${_servers_v%%:*}=$_servers_bin"
	else
		echo "servers.sh: ${_servers_v#*:} not found; the sink tests that need it will skip"
	fi
done
unset _servers_v _servers_bin
