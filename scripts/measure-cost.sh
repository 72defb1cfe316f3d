#!/usr/bin/env bash
# Measures what the metricsd daemon costs: CPU (% of one core) and resident
# memory, for the static build with its defaults (every cgroup controller,
# the cheap network tier). It is a measurement, not a test:
#
#   scripts/measure-cost.sh                       # as root: the Docker host
#   MEASURE_LAYOUT=scale scripts/measure-cost.sh  # 1,000 groups, 100 namespaces
#
# MEASURE_LAYOUT=docker (the default) is issue 6's testbed and its budget
# (at most 0.3% of one core and 20 MB RSS at -interval 1s): it starts the
# private test daemons (scripts/daemons.sh) and runs $MEASURE_CONTAINERS
# busybox containers (33; each in a network namespace of its own, --network
# none) in that dockerd. Each configuration in $MEASURE_CONFIGS is
# RUNTIME:SINK:
#
#   docker     the Docker adapter alone (CONTAINERD_ADDRESS unset)
#   auto       the deployed configuration: Docker and containerd sockets both
#              present, -runtime auto uses both (a Docker host always runs
#              containerd)
#
# default "docker:stdout auto:stdout auto:prometheus", at -interval 1s.
#
# MEASURE_LAYOUT=scale is issue 15's: the scale benchmark's layout,
# $MEASURE_GROUPS bare v1 groups (1,000; cpu, cpuacct, memory, blkio, pids)
# with a sleep process each, every tenth of those in a network namespace of
# its own ($MEASURE_NAMESPACES, 100), found by the cgroupfs discoverer
# (-runtime cgroupfs -cgroup-subtree: only these groups). Configurations
# default to "cgroupfs:stdout cgroupfs:prometheus", each at every interval
# of $MEASURE_INTERVALS ("1s 10s"); no daemon is started.
#
# Sinks: stdout (line protocol to /dev/null), prometheus (its /metrics
# fetched every $MEASURE_PROM_SCRAPE s over loopback, 15 by default, 0 for
# never; $MEASURE_PROM_LISTEN, a free port by default) and remotewrite (to
# a VictoriaMetrics, Debian victoria-metrics, started here on loopback: its
# own CPU is not the daemon's; at the end of each run the script checks
# that it holds every container). A sink suffixed +page (auto:stdout+page)
# runs the same with the live page open: a client fetching what the page
# fetches (/api/v1/containers and one container's /api/v1/series) once a
# second over one kept-alive connection (a python3 client), the page's
# rate at -interval 1s (what a browser costs is its own, not the daemon's).
#
# Same-run comparisons: a sink suffixed %new (auto:stdout%new) runs a second
# daemon built from the source tree $MEASURE_NEW_SRC (another checkout, e.g.
# a `git worktree add` of the commit to compare with) in the same rounds; a
# sink written SINK~X (remotewrite~big) adds the daemon flags in
# $MEASURE_X_<X> (MEASURE_X_big="-remotewrite-batch 2000"). The configurations run one at a time,
# interleaved, in $MEASURE_ROUNDS rounds (2). For each run it waits
# $MEASURE_WARMUP s (5), then reads utime+stime from /proc/<pid>/stat at
# t=0 and t=$MEASURE_SECONDS (60), and VmRSS and VmHWM from
# /proc/<pid>/status at the end, and prints
#
#   round runtime sink interval containers seconds cpu_ticks cpu_%_of_one_core vmrss_kB vmhwm_kB
#
# The daemon runs with RLIMIT_NOFILE $MEASURE_NOFILE (65536, as the
# systemd unit sets it) where the script may raise it, else the hard limit.
#
# It removes its containers, groups, processes and namespaces, stops its
# daemons and deletes its files at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

layout=${MEASURE_LAYOUT:-docker}
secs=${MEASURE_SECONDS:-60}
warm=${MEASURE_WARMUP:-5}
rounds=${MEASURE_ROUNDS:-2}
scrape=${MEASURE_PROM_SCRAPE:-15}
# The daemon's -listen (/healthz, /metrics): a free loopback port unless
# given, since other runs of this script may share the machine.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
listen=${MEASURE_PROM_LISTEN:-127.0.0.1:$(free_port)}
case $layout in
docker)
	n=${MEASURE_CONTAINERS:-33}
	configs=${MEASURE_CONFIGS:-docker:stdout auto:stdout auto:prometheus}
	intervals=${MEASURE_INTERVALS:-1s}
	;;
scale)
	n=${MEASURE_GROUPS:-1000}
	nns=${MEASURE_NAMESPACES:-100}
	configs=${MEASURE_CONFIGS:-cgroupfs:stdout cgroupfs:prometheus}
	intervals=${MEASURE_INTERVALS:-1s 10s}
	;;
*)
	echo "measure-cost.sh: MEASURE_LAYOUT=$layout: want docker or scale" >&2
	exit 2
	;;
esac

if [ "$(id -u)" != 0 ]; then
	echo "measure-cost.sh: needs root (containers or cgroups, and the daemon reads every cgroup and namespace)" >&2
	exit 1
fi
# The daemon's descriptor limit is the deployed one where the script may
# raise it, the systemd unit's LimitNOFILE=65536
# (deploy/systemd/metricsd.service); without CAP_SYS_RESOURCE it stays at
# the hard limit, and a daemon that can not open every group fails the
# check below.
nofile=${MEASURE_NOFILE:-65536}
if ! ulimit -n "$nofile" 2>/dev/null; then
	ulimit -n "$(ulimit -Hn)"
	echo "measure-cost.sh: could not raise RLIMIT_NOFILE to $nofile (no CAP_SYS_RESOURCE?); the daemon runs with $(ulimit -n)" >&2
fi
work=$(mktemp -d /tmp/mdcost.XXXX)
daemon_pid="" scraper_pid="" vm_pid="" page_pid=""
containers=() sleepers=() netnses=()
tag=mdcost-$$
controllers=(cpu cpuacct memory blkio pids)
cleanup() {
	set +e
	[ -n "$scraper_pid" ] && kill "$scraper_pid" 2>/dev/null && wait "$scraper_pid" 2>/dev/null
	[ -n "$page_pid" ] && kill "$page_pid" 2>/dev/null && wait "$page_pid" 2>/dev/null
	[ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
	[ -n "$vm_pid" ] && kill "$vm_pid" 2>/dev/null && wait "$vm_pid" 2>/dev/null
	if [ ${#containers[@]} -gt 0 ] && [ -n "${METRICSD_TEST_DOCKER_HOST:-}" ]; then
		docker -H "$METRICSD_TEST_DOCKER_HOST" rm -f "${containers[@]}" >/dev/null 2>&1
	fi
	declare -F daemons_stop >/dev/null && daemons_stop
	if [ ${#sleepers[@]} -gt 0 ]; then
		kill -KILL "${sleepers[@]}" 2>/dev/null
		wait 2>/dev/null
	fi
	local c
	for c in "${controllers[@]}"; do
		[ -d "/sys/fs/cgroup/$c/$tag" ] && find "/sys/fs/cgroup/$c/$tag" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	for c in "${netnses[@]}"; do ip netns del "$c" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

# Static, as the README builds it to ship: a cgo build also maps libc (~1.7 MB
# more RSS).
CGO_ENABLED=0 go build -o "$work/metricsd" ./examples/metricsd
if [ -n "${MEASURE_NEW_SRC:-}" ]; then
	(cd "$MEASURE_NEW_SRC" && CGO_ENABLED=0 go build -o "$work/metricsd-new" ./examples/metricsd)
elif [[ "$configs" == *%new* ]]; then
	echo "measure-cost.sh: a %new configuration needs MEASURE_NEW_SRC (the source tree of the second daemon)" >&2
	exit 1
fi

if [ "$layout" = docker ]; then
	# shellcheck source=/dev/null
	source scripts/daemons.sh
	if [ -z "${METRICSD_TEST_DOCKER_HOST:-}" ] || [ -z "${METRICSD_TEST_IMAGE:-}" ] || [ -z "${METRICSD_TEST_CONTAINERD:-}" ]; then
		echo "measure-cost.sh: the test dockerd or containerd did not start (see the daemons.sh lines above)" >&2
		exit 1
	fi
	export DOCKER_HOST=$METRICSD_TEST_DOCKER_HOST
	for i in $(seq 1 "$n"); do
		name=mdcost-$i-$$
		docker run -d --name "$name" --network none "$METRICSD_TEST_IMAGE" /bin/sleep 3600 >/dev/null
		containers+=("$name")
	done
else
	for c in "${controllers[@]}"; do
		[ -d "/sys/fs/cgroup/$c" ] || { echo "measure-cost.sh: no v1 $c hierarchy at /sys/fs/cgroup/$c" >&2; exit 1; }
	done
	for i in $(seq 0 $((nns - 1))); do
		ip netns add "$tag-$i"
		netnses+=("$tag-$i")
	done
	every=$((n / nns))
	for i in $(seq 0 $((n - 1))); do
		if [ $((i % every)) = 0 ] && [ $((i / every)) -lt "$nns" ]; then
			ip netns exec "$tag-$((i / every))" sleep 36000 &
		else
			sleep 36000 &
		fi
		sleepers+=($!)
	done
	for c in "${controllers[@]}"; do
		mkdir -p "/sys/fs/cgroup/$c/$tag/bench"
	done
	for i in $(seq 0 $((n - 1))); do
		for c in "${controllers[@]}"; do
			mkdir "/sys/fs/cgroup/$c/$tag/bench/c$i"
			echo "${sleepers[$i]}" >"/sys/fs/cgroup/$c/$tag/bench/c$i/cgroup.procs"
		done
	done
fi

# The remote_write receiver, when a configuration writes to one.
case " $configs " in
*:remotewrite*)
	vm_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	victoria-metrics -httpListenAddr "127.0.0.1:$vm_port" -storageDataPath "$work/vm" -retentionPeriod 1d \
		-search.latencyOffset 0s -loggerLevel ERROR >"$work/vm.log" 2>&1 &
	vm_pid=$!
	for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$vm_port/health" >/dev/null 2>&1 && break; sleep 0.1; done
	;;
esac

# args RUNTIME SINK INTERVAL: the daemon's command line; env RUNTIME: its
# environment.
daemon_args() {
	local sk=${2%%~*} x=""
	[ "$sk" != "$2" ] && x=${2#*~}
	local a=(-interval "$3" -sink "$sk" -listen "$listen")
	[ "$sk" = remotewrite ] && a+=(-remotewrite-url "http://127.0.0.1:$vm_port/api/v1/write")
	# shellcheck disable=SC2206 # the flags, split into words
	[ -n "$x" ] && { local v="MEASURE_X_$x"; a+=(${!v}); }
	case $1 in
	docker | auto) a+=(-runtime auto) ;;
	cgroupfs) a+=(-runtime cgroupfs -cgroup-subtree "/$tag") ;;
	esac
	echo "${a[@]}"
}
daemon_env() {
	case $1 in
	docker) echo "CONTAINERD_ADDRESS=" ;;
	auto) echo "CONTAINERD_ADDRESS=$METRICSD_TEST_CONTAINERD" ;;
	*) echo "CONTAINERD_ADDRESS=" ;;
	esac
}

# The daemon must see them all: one container_cpu line each.
for cfg in $configs; do
	rt=${cfg%%:*}
	# shellcheck disable=SC2046
	seen=$(env $(daemon_env "$rt") "$work/metricsd" -once $(daemon_args "$rt" stdout 1s) | grep -c '^container_cpu,' || true)
	if [ "$seen" != "$n" ]; then
		echo "measure-cost.sh: the daemon ($rt) sees $seen containers, want $n" >&2
		exit 1
	fi
done

tck=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; } # utime+stime (fields 14, 15)
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

echo "go $(go env GOVERSION), $(nproc) CPUs, kernel $(uname -r), CLK_TCK $tck, layout $layout, $n containers, ${secs} s after ${warm} s, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%5s %-9s %-11s %8s %10s %7s %9s %17s %8s %8s\n' round runtime sink interval containers seconds cpu_ticks cpu_%_of_one_core vmrss_kB vmhwm_kB
for r in $(seq 1 "$rounds"); do
	for iv in $intervals; do
		for cfg in $configs; do
			rt=${cfg%%:*} s=${cfg#*:} label=${cfg#*:}
			page=0
			case $s in *+page) s=${s%+page} page=1 ;; esac
			# shellcheck disable=SC2046
			bin="$work/metricsd"; case $s in *%new) s=${s%\%new}; bin="$work/metricsd-new" ;; esac
			env $(daemon_env "$rt") "$bin" $(daemon_args "$rt" "$s" "$iv") >/dev/null 2>"$work/run.err" &
			daemon_pid=$!
			if [ "$s" = prometheus ] && [ "$scrape" != 0 ]; then
				(while sleep "$scrape"; do curl -fsS "http://$listen/metrics" >/dev/null || echo "scrape failed" >>"$work/run.err"; done) &
				scraper_pid=$!
			fi
			if [ "$page" = 1 ]; then
				# What the open page fetches, once a second, on one kept-alive
				# connection as a browser keeps it.
				python3 - "$listen" 2>>"$work/run.err" <<-'EOF' &
					import http.client, json, sys, time
					host, port = sys.argv[1].rsplit(":", 1)
					conn = http.client.HTTPConnection(host, int(port), timeout=10)
					def get(path):
					    global conn
					    try:
					        conn.request("GET", path)
					        r = conn.getresponse()
					        body = r.read()
					        if r.status == 200:
					            return body
					        print("page poll:", path, r.status, file=sys.stderr)
					    except OSError as e:
					        print("page poll:", path, e, file=sys.stderr)
					        conn = http.client.HTTPConnection(host, int(port), timeout=10)
					    return None
					time.sleep(2)
					ref = json.loads(get("/api/v1/containers"))["containers"][0]["ref"]
					while True:
					    time.sleep(1)
					    get("/api/v1/containers")
					    get("/api/v1/series?ref=%d" % ref)
				EOF
				page_pid=$!
			fi
			sleep "$warm"
			kill -0 "$daemon_pid" || { echo "measure-cost.sh: the daemon exited:" >&2; cat "$work/run.err" >&2; exit 1; }
			t0=$(ticks "$daemon_pid") s0=$(date +%s.%N)
			sleep "$secs"
			t1=$(ticks "$daemon_pid") s1=$(date +%s.%N)
			rss=$(status_kb "$daemon_pid" VmRSS) hwm=$(status_kb "$daemon_pid" VmHWM)
			if [ "${s%%~*}" = prometheus ]; then
				got=$(curl -fsS "http://$listen/metrics" | grep -c '^container_cpu_usage_seconds_total{' || true)
				[ "$got" = "$n" ] || echo "measure-cost.sh: /metrics has $got containers, want $n" >&2
			fi
			if [ "${s%%~*}" = remotewrite ]; then
				curl -fsS "http://127.0.0.1:$vm_port/internal/force_flush" >/dev/null || true
				sleep 2
				got=$(curl -fsS "http://127.0.0.1:$vm_port/api/v1/query" --data-urlencode 'query=count(container_cpu_usage_seconds_total{name=~"mdcost-.*"})' |
					sed -n 's/.*"value":\[[^,]*,"\([0-9]*\)".*/\1/p')
				[ "$got" = "$n" ] || echo "measure-cost.sh: VictoriaMetrics has ${got:-no} containers, want $n" >&2
			fi
			[ -n "$scraper_pid" ] && { kill "$scraper_pid"; wait "$scraper_pid" 2>/dev/null || true; scraper_pid=""; }
			[ -n "$page_pid" ] && { kill "$page_pid"; wait "$page_pid" 2>/dev/null || true; page_pid=""; }
			kill "$daemon_pid"
			wait "$daemon_pid" || echo "measure-cost.sh: the daemon exited with $?" >&2
			daemon_pid=""
			if [ -s "$work/run.err" ]; then
				echo "measure-cost.sh: the daemon's standard error ($rt, $s, $iv):" >&2
				cat "$work/run.err" >&2
			fi
			awk -v r="$r" -v rt="$rt" -v s="$label" -v iv="$iv" -v n="$n" -v t="$((t1 - t0))" -v tck="$tck" -v a="$s0" -v b="$s1" -v rss="$rss" -v hwm="$hwm" \
				'BEGIN { el = b - a; printf "%5d %-9s %-11s %8s %10d %7.1f %9d %17.3f %8d %8d\n", r, rt, s, iv, n, el, t, 100 * t / tck / el, rss, hwm }'
		done
	done
done
