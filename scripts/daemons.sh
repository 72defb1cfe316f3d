# Sourced by scripts/test.sh (bash): starts a private containerd 1.6 and
# dockerd 20.10 for the runtime/ tests, as ../shared/DESIGN.md describes, and
# exports where they listen. Source it, run the tests, then call daemons_stop
# (test.sh does so from its EXIT trap; it is safe to call twice).
#
# Exports, each only when its daemon answered:
#   METRICSD_TEST_CONTAINERD   containerd's gRPC socket path
#   METRICSD_TEST_DOCKER_HOST  unix://<dockerd socket>
#   METRICSD_TEST_IMAGE        a busybox image imported into that dockerd
#   METRICSD_TEST_PODMAN_HOST  unix://<podman system service socket> (Podman's
#                              Docker-compatible API), METRICSD_TEST_PODMAN a
#                              podman CLI wrapper with the service's private
#                              storage flags, METRICSD_TEST_PODMAN_IMAGE
# and always, when the temp dir could be made:
#   METRICSD_TEST_CGROUP_PARENT the cgroup beneath which the containers' groups
#                              go (dockerd --cgroup-parent <it>/docker; the
#                              tests' ctr run --cgroup and podman run
#                              --cgroup-parent); daemons_stop removes it
#   METRICSD_TEST_ROOTFS       a busybox rootfs directory (for ctr run --rootfs)
#   METRICSD_TEST_DAEMONCTL    a script: `daemonctl stop|kill|start|restart|pid
#                              containerd|dockerd|podman`; tests use it to kill and
#                              restart a daemon with its original command line
#   METRICSD_TEST_DAEMON_DIR   the temp dir (pid files, logs, the test lock)
# A daemon that cannot start is reported with the reason and left unexported,
# so the Go tests that need it skip saying so. Nothing here touches the host's
# /var/run/docker.sock or /run/containerd: all paths are in the temp dir.

daemons__log() { echo "daemons.sh: $*" >&2; }

daemons__start() {
	# test.sh sources this with set -euo pipefail: nothing here may end the
	# run, so this function (only: `local -`) runs without them.
	local -
	set +eu +o pipefail
	# podman is optional (its Docker-compatible API is a documented use of
	# the docker adapter; without it that one test skips), so it is
	# installed on its own: its failure must not cost the others.
	local missing p pkgset updated=""
	for pkgset in "containerd runc docker.io busybox-static" "podman"; do
		missing=()
		if command -v dpkg-query >/dev/null; then
			for p in $pkgset; do
				dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
			done
		fi
		[ ${#missing[@]} -gt 0 ] || continue
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
			daemons__log "installing ${missing[*]}"
			if [ -z "$updated" ]; then
				apt-get update -qq >/dev/null 2>&1
				updated=1
			fi
			# No package may start its service (docker.io's init script
			# would start a system dockerd with a bridge and iptables):
			# policy-rc.d exit 101 while installing.
			local made_policy=""
			if [ ! -e /usr/sbin/policy-rc.d ]; then
				printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
			fi
			if ! DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
				daemons__log "SKIP: apt-get install ${missing[*]} failed; the tests that need them will skip"
			fi
			[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d || true
		else
			daemons__log "SKIP: ${missing[*]} missing and not root with apt-get; the tests that need them will skip"
		fi
	done
	if [ "$(id -u)" != 0 ]; then
		daemons__log "SKIP: not root: containerd and dockerd need root; runtime daemon tests will skip"
		return 0
	fi
	local d
	d=$(mktemp -d /tmp/mdrt.XXXX) || { daemons__log "SKIP: mktemp failed"; return 0; }
	export METRICSD_TEST_DAEMON_DIR=$d
	# Every container's cgroup goes beneath this parent (dockerd's
	# --cgroup-parent, ctr run --cgroup in the tests); daemons_stop removes it.
	export METRICSD_TEST_CGROUP_PARENT=/metricsd-rt-${d##*.}
	echo "$METRICSD_TEST_CGROUP_PARENT" >"$d/cgroup-parent"
	: >"$d/lock"

	# A busybox rootfs (static binary plus applet links).
	if [ -x /bin/busybox ] && /bin/busybox --help 2>&1 | head -1 | grep -qi busybox; then
		mkdir -p "$d/rootfs/bin" "$d/rootfs/proc" "$d/rootfs/sys" "$d/rootfs/dev" "$d/rootfs/etc" "$d/rootfs/tmp"
		cp /bin/busybox "$d/rootfs/bin/busybox"
		# One process for the ~270 links (perl is Essential in Debian): a
		# fork per link costs minutes in scripts/v2lane.sh's emulated guest.
		# shellcheck disable=SC2046
		perl -e 'chdir shift or die; for (@ARGV) { symlink("busybox", $_) or die "$_: $!" unless $_ eq "busybox" }' \
			"$d/rootfs/bin" $(/bin/busybox --list)
		echo "root:x:0:0:root:/:/bin/sh" >"$d/rootfs/etc/passwd"
		echo "root:x:0:" >"$d/rootfs/etc/group"
		export METRICSD_TEST_ROOTFS=$d/rootfs
	else
		daemons__log "SKIP: no static busybox; no rootfs"
	fi

	# The control script: the exact command lines, pid files, start/stop by PID.
	cat >"$d/daemonctl" <<EOF
#!/usr/bin/env bash
# daemonctl stop|kill|start|restart|pid containerd|dockerd|podman
set -u
D=$d
cmd_containerd() { exec containerd --config "\$D/containerd.toml" >>"\$D/containerd.log" 2>&1; }
cmd_dockerd() {
	exec dockerd --data-root "\$D/docker" --exec-root "\$D/dexec" -H "unix://\$D/docker.sock" \\
		--pidfile "\$D/docker.pid" --containerd "\$D/containerd.sock" \\
		--bridge=none --iptables=false --ip-forward=false --ip-masq=false \\
		--exec-opt native.cgroupdriver=cgroupfs \\
		--cgroup-parent "\$(cat "\$D/cgroup-parent")/docker" \\
		>>"\$D/dockerd.log" 2>&1
}
# podman system service, Docker-compatible API; storage, run state, events
# and cgroups all private (the tests pass --cgroup-parent to podman run).
cmd_podman() { exec "\$D/podman" system service --time 0 "unix://\$D/podman.sock" >>"\$D/podman.log" 2>&1; }
sock() { case \$1 in containerd) echo "\$D/containerd.sock" ;; dockerd) echo "\$D/docker.sock" ;; podman) echo "\$D/podman.sock" ;; esac; }
pidof_() { local f="\$D/\$1.pid2"; [ -s "\$f" ] && cat "\$f"; }
# running PID: alive and not a zombie (PID 1 here may not reap orphans).
running() { local s; s=\$(sed 's/.*) //' "/proc/\$1/stat" 2>/dev/null) && [ -n "\$s" ] && [ "\${s%% *}" != Z ]; }
alive() { local p; p=\$(pidof_ "\$1") && [ -n "\$p" ] && running "\$p"; }
answers() {
	case \$1 in
	containerd) ctr --address "\$D/containerd.sock" --timeout 2s version >/dev/null 2>&1 ;;
	dockerd) docker -H "unix://\$D/docker.sock" version >/dev/null 2>&1 ;;
	podman) podman --remote --url "unix://\$D/podman.sock" version >/dev/null 2>&1 ;;
	esac
}
stop() {
	local p i
	p=\$(pidof_ "\$1") || return 0
	if running "\$p"; then
		kill -\${2:-TERM} "\$p" 2>/dev/null
		for i in \$(seq 1 150); do running "\$p" || break; sleep 0.1; done
		running "\$p" && kill -KILL "\$p" 2>/dev/null
		for i in \$(seq 1 50); do running "\$p" || break; sleep 0.1; done
	fi
	rm -f "\$D/\$1.pid2"
}
start() {
	local i
	alive "\$1" && return 0
	rm -f "\$(sock "\$1")" "\$D/\$1.pid2"
	# dockerd refuses to start while its pid file names a live process
	# (a zombie counts); ours is dead here, so the file is stale.
	[ "\$1" = dockerd ] && rm -f "\$D/docker.pid"
	# A small bash stays the daemon's parent and reaps it (PID 1 here may
	# not reap orphans, and dockerd's pid file check counts zombies).
	setsid bash -c "\$(declare -f cmd_\$1); D=\$D; cmd_\$1 & echo \\\$! >\"\$D/\$1.pid2\"; wait" </dev/null >/dev/null 2>&1 &
	for i in \$(seq 1 50); do [ -s "\$D/\$1.pid2" ] && break; sleep 0.1; done
	for i in \$(seq 1 300); do
		answers "\$1" && return 0
		alive "\$1" || { echo "daemonctl: \$1 exited; log tail:" >&2; tail -5 "\$D/\$1.log" >&2; return 1; }
		sleep 0.1
	done
	echo "daemonctl: \$1 did not answer within 30 s" >&2
	return 1
}
case \${1:-} in
stop) stop "\$2" "\${3:-TERM}" ;;
kill) stop "\$2" KILL ;;
start) start "\$2" ;;
restart) stop "\$2" && start "\$2" ;;
pid) pidof_ "\$2" ;;
*) echo "usage: daemonctl stop|kill|start|restart|pid containerd|dockerd" >&2; exit 2 ;;
esac
EOF
	chmod +x "$d/daemonctl"
	export METRICSD_TEST_DAEMONCTL=$d/daemonctl

	cat >"$d/containerd.toml" <<EOF
version = 2
root = "$d/croot"
state = "$d/cstate"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[debug]
  address = "$d/containerd-debug.sock"
[metrics]
  address = ""
EOF

	if ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
		daemons__log "SKIP: containerd or runc not installed; containerd and docker tests will skip"
		return 0
	fi
	if "$d/daemonctl" start containerd; then
		export METRICSD_TEST_CONTAINERD=$d/containerd.sock
	else
		daemons__log "SKIP: containerd did not start (see $d/containerd.log); containerd and docker tests will skip"
		return 0
	fi
	if ! command -v dockerd >/dev/null; then
		daemons__log "SKIP: dockerd not installed; docker tests will skip"
		return 0
	fi
	if ! "$d/daemonctl" start dockerd; then
		daemons__log "SKIP: dockerd did not start (see $d/dockerd.log); docker tests will skip"
		return 0
	fi
	export METRICSD_TEST_DOCKER_HOST=unix://$d/docker.sock
	if [ -n "${METRICSD_TEST_ROOTFS:-}" ] &&
		tar -C "$METRICSD_TEST_ROOTFS" -c . | docker -H "$METRICSD_TEST_DOCKER_HOST" import - metricsd-test/busybox:1 >/dev/null; then
		export METRICSD_TEST_IMAGE=metricsd-test/busybox:1
	else
		daemons__log "SKIP: could not import the busybox image into dockerd; docker tests will skip"
	fi
	daemons__start_podman "$d"
	daemons__log "containerd pid $("$d/daemonctl" pid containerd), dockerd pid $("$d/daemonctl" pid dockerd), podman pid $("$d/daemonctl" pid podman), dir $d"
}

daemons__start_podman() {
	# test.sh sources this with set -euo pipefail: nothing here may end the
	# run, so this function (only: `local -`) runs without them.
	local -
	set +eu +o pipefail
	local d=$1
	if ! command -v podman >/dev/null || [ -z "${METRICSD_TEST_ROOTFS:-}" ]; then
		daemons__log "SKIP: podman not installed (or no rootfs); the podman test will skip"
		return 0
	fi
	printf '#!/bin/sh\nexec podman --root "%s/proot" --runroot "%s/prun" --tmpdir "%s/ptmp" --cgroup-manager cgroupfs --events-backend file --storage-driver vfs "$@"\n' "$d" "$d" "$d" >"$d/podman"
	chmod +x "$d/podman"
	if ! "$d/daemonctl" start podman; then
		daemons__log "SKIP: podman system service did not start (see $d/podman.log); the podman test will skip"
		return 0
	fi
	if tar -C "$METRICSD_TEST_ROOTFS" -c . | "$d/podman" import - localhost/metricsd-test-busybox:1 >/dev/null 2>&1; then
		export METRICSD_TEST_PODMAN_HOST=unix://$d/podman.sock METRICSD_TEST_PODMAN=$d/podman
		export METRICSD_TEST_PODMAN_IMAGE=localhost/metricsd-test-busybox:1
	else
		daemons__log "SKIP: could not import the busybox image into podman; the podman test will skip"
	fi
}

# daemons_stop removes what the tests left in the private daemons, stops both
# by PID (dockerd first), kills leftover shims of this containerd, unmounts
# and removes the temp dir. Safe to call twice.
daemons_stop() {
	# test.sh sources this with set -euo pipefail: nothing here may end the
	# run, so this function (only: `local -`) runs without them.
	local -
	set +eu +o pipefail
	local d=${METRICSD_TEST_DAEMON_DIR:-}
	[ -n "$d" ] && [ -d "$d" ] || return 0
	if [ -n "${METRICSD_TEST_DOCKER_HOST:-}" ] && "$d/daemonctl" pid dockerd >/dev/null; then
		local ids
		ids=$(timeout 20 docker -H "$METRICSD_TEST_DOCKER_HOST" ps -aq 2>/dev/null)
		[ -n "$ids" ] && timeout 60 docker -H "$METRICSD_TEST_DOCKER_HOST" rm -f $ids >/dev/null 2>&1
	fi
	if [ -x "$d/podman" ]; then
		timeout 60 "$d/podman" rm -af -t 0 >/dev/null 2>&1
		"$d/daemonctl" stop podman
	fi
	"$d/daemonctl" stop dockerd
	if "$d/daemonctl" pid containerd >/dev/null; then
		local ns c
		for ns in $(timeout 10 ctr --address "$d/containerd.sock" namespaces ls -q 2>/dev/null); do
			for c in $(timeout 10 ctr --address "$d/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null); do
				timeout 10 ctr --address "$d/containerd.sock" -n "$ns" tasks kill -s KILL "$c" >/dev/null 2>&1
			done
			for c in $(timeout 10 ctr --address "$d/containerd.sock" -n "$ns" tasks ls -q 2>/dev/null); do
				timeout 10 ctr --address "$d/containerd.sock" -n "$ns" tasks delete -f "$c" >/dev/null 2>&1
			done
			for c in $(timeout 10 ctr --address "$d/containerd.sock" -n "$ns" containers ls -q 2>/dev/null); do
				timeout 10 ctr --address "$d/containerd.sock" -n "$ns" containers rm "$c" >/dev/null 2>&1
			done
		done
	fi
	"$d/daemonctl" stop containerd
	# Shims of this containerd outlive it; each wrote its PID in its bundle.
	local f p
	for f in "$d"/cstate/io.containerd.runtime.v2.task/*/*/shim.pid; do
		[ -s "$f" ] && p=$(cat "$f") && kill -KILL "$p" 2>/dev/null
	done
	# Mounts left beneath the temp dir (rootfs, netns, shm), deepest first.
	local m
	for m in $(awk -v d="$d" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount -l "$m" 2>/dev/null
	done
	# The cgroups of the containers, beneath the parent made for them.
	local cg h
	cg=$(cat "$d/cgroup-parent" 2>/dev/null)
	if [ -n "$cg" ]; then
		for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
			[ -d "$h$cg" ] && find "$h$cg" -depth -type d -exec rmdir {} + 2>/dev/null
		done
	fi
	rm -rf "$d" 2>/dev/null || daemons__log "could not remove all of $d"
	unset METRICSD_TEST_PODMAN_HOST METRICSD_TEST_PODMAN METRICSD_TEST_PODMAN_IMAGE
	unset METRICSD_TEST_CGROUP_PARENT METRICSD_TEST_DAEMON_DIR METRICSD_TEST_CONTAINERD METRICSD_TEST_DOCKER_HOST \
		METRICSD_TEST_IMAGE METRICSD_TEST_ROOTFS METRICSD_TEST_DAEMONCTL
}

daemons__start || true
