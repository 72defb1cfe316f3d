#!/usr/bin/env bash
# Measures what the metricsd daemon costs (issue 6's budget: at most 0.3% of
# one core and 20 MB RSS at -interval 1s, reading every cgroup controller and
# the cheap network tier, its defaults). It is a measurement, not a test:
#
#   scripts/measure-cost.sh            # as root
#
# It starts the private test daemons (scripts/daemons.sh), runs
# $MEASURE_CONTAINERS busybox containers (33; each in a network namespace of
# its own, --network none) in that dockerd, builds examples/metricsd and runs
# it once per sink: stdout (line protocol to /dev/null) and prometheus (its
# /metrics fetched every $MEASURE_PROM_SCRAPE s over loopback, 15 by default,
# 0 for never), each serving HTTP on $MEASURE_PROM_LISTEN. For each it waits
# $MEASURE_WARMUP s (5), then reads utime+stime from /proc/<pid>/stat at t=0
# and t=$MEASURE_SECONDS (60), and VmRSS and VmHWM from /proc/<pid>/status at
# the end, and prints
#
#   sink containers seconds cpu_ticks cpu_%_of_one_core vmrss_kB vmhwm_kB
#
# It removes its containers, stops its daemons and deletes its files at exit.
#
# The daemon finds the test dockerd through DOCKER_HOST with -runtime auto
# (-runtime docker -docker-host would do the same).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

n=${MEASURE_CONTAINERS:-33}
secs=${MEASURE_SECONDS:-60}
warm=${MEASURE_WARMUP:-5}
scrape=${MEASURE_PROM_SCRAPE:-15}
listen=${MEASURE_PROM_LISTEN:-127.0.0.1:19338}
sinks=${MEASURE_SINKS:-stdout prometheus}

if [ "$(id -u)" != 0 ]; then
	echo "measure-cost.sh: needs root (containers, and the daemon reads every cgroup and namespace)" >&2
	exit 1
fi
work=$(mktemp -d /tmp/mdcost.XXXX)
daemon_pid="" scraper_pid=""
containers=()
cleanup() {
	set +e
	[ -n "$scraper_pid" ] && kill "$scraper_pid" 2>/dev/null && wait "$scraper_pid" 2>/dev/null
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	if [ ${#containers[@]} -gt 0 ] && [ -n "${METRICSD_TEST_DOCKER_HOST:-}" ]; then
		docker -H "$METRICSD_TEST_DOCKER_HOST" rm -f "${containers[@]}" >/dev/null 2>&1
	fi
	declare -F daemons_stop >/dev/null && daemons_stop
	rm -rf "$work"
}
trap cleanup EXIT

# shellcheck source=/dev/null
source scripts/daemons.sh
if [ -z "${METRICSD_TEST_DOCKER_HOST:-}" ] || [ -z "${METRICSD_TEST_IMAGE:-}" ]; then
	echo "measure-cost.sh: the test dockerd did not start (see the daemons.sh lines above)" >&2
	exit 1
fi
export DOCKER_HOST=$METRICSD_TEST_DOCKER_HOST
unset CONTAINERD_ADDRESS # docker alone, as with -runtime docker

# Static, as the README builds it to ship: a cgo build also maps libc (~1.7 MB
# more RSS).
CGO_ENABLED=0 go build -o "$work/metricsd" ./examples/metricsd

for i in $(seq 1 "$n"); do
	name=mdcost-$i-$$
	docker run -d --name "$name" --network none "$METRICSD_TEST_IMAGE" /bin/sleep 3600 >/dev/null
	containers+=("$name")
done

# The daemon must see them all: one container_cpu line each.
seen=$("$work/metricsd" -once -runtime auto | grep -c '^container_cpu,' || true)
if [ "$seen" != "$n" ]; then
	echo "measure-cost.sh: the daemon sees $seen containers, want $n" >&2
	exit 1
fi

tck=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; } # utime+stime (fields 14, 15)
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

echo "go $(go env GOVERSION), $(nproc) CPUs, kernel $(uname -r), CLK_TCK $tck, $n containers, -interval 1s, ${secs} s after ${warm} s"
printf '%-10s %10s %7s %9s %17s %8s %8s\n' sink containers seconds cpu_ticks cpu_%_of_one_core vmrss_kB vmhwm_kB
for s in $sinks; do
	args=(-interval 1s -runtime auto -sink "$s")
	args+=(-listen "$listen") # every sink: /healthz and /readyz are served too
	"$work/metricsd" "${args[@]}" >/dev/null 2>"$work/$s.err" &
	daemon_pid=$!
	if [ "$s" = prometheus ] && [ "$scrape" != 0 ]; then
		(while sleep "$scrape"; do curl -fsS "http://$listen/metrics" >/dev/null || echo "scrape failed" >>"$work/$s.err"; done) &
		scraper_pid=$!
	fi
	sleep "$warm"
	kill -0 "$daemon_pid" || { echo "measure-cost.sh: the daemon exited:" >&2; cat "$work/$s.err" >&2; exit 1; }
	t0=$(ticks "$daemon_pid") s0=$(date +%s.%N)
	sleep "$secs"
	t1=$(ticks "$daemon_pid") s1=$(date +%s.%N)
	rss=$(status_kb "$daemon_pid" VmRSS) hwm=$(status_kb "$daemon_pid" VmHWM)
	if [ "$s" = prometheus ]; then
		got=$(curl -fsS "http://$listen/metrics" | grep -c '^container_cpu_usage_seconds_total{' || true)
		[ "$got" = "$n" ] || echo "measure-cost.sh: /metrics has $got containers, want $n" >&2
	fi
	[ -n "$scraper_pid" ] && { kill "$scraper_pid"; wait "$scraper_pid" 2>/dev/null || true; scraper_pid=""; }
	kill "$daemon_pid"
	wait "$daemon_pid" || echo "measure-cost.sh: the daemon exited with $?" >&2
	daemon_pid=""
	if [ -s "$work/$s.err" ]; then
		echo "measure-cost.sh: the daemon's standard error ($s):" >&2
		cat "$work/$s.err" >&2
	fi
	awk -v s="$s" -v n="$n" -v t="$((t1 - t0))" -v tck="$tck" -v a="$s0" -v b="$s1" -v rss="$rss" -v hwm="$hwm" \
		'BEGIN { el = b - a; printf "%-10s %10d %7.1f %9d %17.3f %8d %8d\n", s, n, el, t, 100 * t / tck / el, rss, hwm }'
done
