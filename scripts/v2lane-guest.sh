#!/bin/bash
# The init (PID 1) of a scripts/v2lane.sh guest: a pure cgroup v2 machine whose
# / is the host's, read-only under a tmpfs overlay. It reads the job the host
# wrote to the lane share (/lane/job), sets the machine up, runs each test
# binary in its package's source directory, writes its -v output, exit code and
# seconds to /lane/out/<kernel>/<name>.{log,rc,secs}, writes
# /lane/out/<kernel>/done and powers off. Everything here runs in the guest;
# nothing touches the host but the lane share.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
# shellcheck source=/dev/null
source /lane/job
out=/lane/out/$LABEL
mkdir -p "$out"
exec >>"$out/guest.log" 2>&1
say() { echo "v2lane-guest: [$(cut -d' ' -f1 /proc/uptime 2>/dev/null || echo ?) s] $*"; }

poweroff() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
}
fatal() {
	say "FATAL: $*"
	poweroff
}

mount -t proc proc /proc || fatal "mount /proc"
say "$(uname -r), job $LABEL"
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock
# Pure v2: nsdelegate (a cgroup namespace is a delegation boundary, as
# systemd mounts it), every controller enabled for the children of the root.
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || fatal "mount cgroup2"
echo "+cpu +cpuset +memory +io +pids +hugetlb" >/sys/fs/cgroup/cgroup.subtree_control || fatal "subtree_control"
say "controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
# The ext4 disk is /tmp: t.TempDir() (O_DIRECT, io.stat) and the daemons' state
# land on a real block device. It hides the host's /tmp, where the repository
# may be (a CI clone in a temporary directory): that stays reachable at
# /run/host-tmp.
mkdir -p /run/host-tmp
mount --bind /tmp /run/host-tmp || fatal "bind the host's /tmp"
case "$REPO" in /tmp/*) REPO=/run/host-tmp/${REPO#/tmp/} ;; esac
mount -t ext4 /dev/vda /tmp || fatal "mount /dev/vda"
chmod 1777 /tmp
# The unpacked kernel's modules, for modprobe (docker, podman).
mkdir -p "/lib/modules/$(uname -r)"
mount --bind "$KMODULES" "/lib/modules/$(uname -r)"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
hostname v2lane
ip link set lo up
# A few huge pages for the hugetlb tests.
echo 16 >/proc/sys/vm/nr_hugepages

run() {
	local name=${1%%:*} pkg=${1#*:} start=$SECONDS
	local flags=(-test.v -test.count=1 -test.timeout=20m)
	case " ${SHORT:-} " in *" $name "*) flags+=(-test.short) ;; esac
	say "$name"
	# Run from the ext4 disk, not the 9p share: a test that limits its own
	# group's memory (cgroup/job, the OOM tests) makes the kernel drop and
	# fault in the binary's pages again and again, and 6.12's 9p/netfs read
	# path once panicked the guest under that ("Fatal exception in
	# interrupt" in filemap_fault via netfs).
	mkdir -p /tmp/.lane-bin
	cp "/lane/bin/$name.test" "/tmp/.lane-bin/$name.test"
	(cd "$REPO/$pkg" && exec "/tmp/.lane-bin/$name.test" "${flags[@]}") >"$out/$name.log" 2>&1 </dev/null
	echo $? >"$out/$name.rc"
	rm -f "/tmp/.lane-bin/$name.test"
	echo $((SECONDS - start)) >"$out/$name.secs"
}

# The daemon guest runs the test servers the host's run has (SERVERS: the
# tests start them as children); the other guest runs none: the tests that
# need one skip there, also under CI=true, and run on the host and in the
# daemon guest.
if [ -n "${SERVERS:-}" ]; then
	for kv in $SERVERS; do export "${kv?}"; done
	say "servers: $SERVERS"
else
	export METRICSD_TEST_NO_SERVERS=1
fi

if [ "$DAEMONS" = 1 ]; then
	[ -n "${CI:-}" ] && export CI
	# Starting containerd, dockerd and podman takes minutes under emulation:
	# in the background, while the packages that need no daemon (EARLY) run.
	# The daemons outlive the subshell (daemons.sh starts each in its own
	# session); it leaves their variables in a file.
	say "starting the daemons"
	(
		# shellcheck source=/dev/null
		source "$REPO/scripts/daemons.sh"
		export -p | grep -E '^declare -x METRICSD_TEST_' >/run/daemons.env
	) &
	daemons=$!
	for t in $TESTS; do
		case " ${EARLY:-} " in *" ${t%%:*} "*) run "$t" ;; esac
	done
	wait $daemons
	# shellcheck source=/dev/null
	source /run/daemons.env
	say "daemons: $(grep -o 'METRICSD_TEST_[A-Z_]*' /run/daemons.env | tr '\n' ' ')"
	for t in $TESTS; do
		case " ${EARLY:-} " in *" ${t%%:*} "*) ;; *) run "$t" ;; esac
	done
else
	for t in $TESTS; do run "$t"; done
fi

# The daemons, their containers and the disk go with the guest: it powers off.
say "done"
touch "$out/done"
poweroff
