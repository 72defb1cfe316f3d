#!/usr/bin/env bash
# The pure cgroup v2 lane: the live tests on real cgroup v2 kernels, booted
# under QEMU's software emulation (this machine's /dev/kvm is a nested PVM
# device without vmx/svm, on which stock kernels do not boot). scripts/test.sh
# runs it; it also runs on its own, as root:
#
#   sudo scripts/v2lane.sh [RESULTS_LOG]
#
# Two Debian kernels, downloaded and unpacked, never installed: 6.1 (the
# package behind linux-image-amd64) and the newest linux-image-6.12.*+deb12-amd64.
# Each boots with cgroup v1 switched off (cgroup_no_v1=all), PSI on and THP on
# madvise, the host's / shared read-only over virtio-9p under a tmpfs overlay
# (the guest runs the host's own binaries and daemons), a writable 9p share for
# test binaries in and results out, and a small ext4 disk (a real block device
# for io.stat and O_DIRECT) mounted at the guest's /tmp. scripts/v2lane-guest.sh
# is the guest's init: it mounts cgroup2 with nsdelegate, enables the
# controllers, runs the test binaries and writes each one's output and exit
# code to the share.
#
# The test binaries are built once (go test -c); every kernel runs the
# cgroup, cgroup/job, netns, runtime/cgroupfs, examples/cijob and
# root-package tests; the daemon kernel
# also runs containerd, dockerd and podman (scripts/daemons.sh, in the guest)
# and the runtime/containerd and runtime/docker tests.
#
# Prints per kernel and package the pass/fail/skip counts, the output of a
# failed test binary and the lane's wall time; exits non-zero when a test
# fails or a guest does not finish. It skips, saying why on a line starting
# "v2lane: SKIP", when the machine can not run it (not root, no apt-get, no
# QEMU; under CI=true that fails instead) or METRICSD_V2LANE=0. With
# RESULTS_LOG it appends every test binary's -v output there, each line
# prefixed "[v2 <kernel>] " (test.sh counts the lane's tests in its closing
# line and lists their skip reasons); without, it prints the skip reasons.
#
# Environment:
#   METRICSD_V2LANE=0               skip the lane
#   METRICSD_V2LANE_CACHE=DIR       kernels and initramfs kept between runs
#                                   (default /var/cache/metricsd-v2lane), one
#                                   directory per kernel package version
#   METRICSD_V2LANE_KERNELS="6.1 6.12"  which kernels, in order
#   METRICSD_V2LANE_DAEMONS=6.1     the kernel that also runs the daemons
#                                   ("" for none)
#   METRICSD_V2LANE_TIMEOUT=2400    seconds one guest may run before it is killed
#   METRICSD_V2LANE_PKGS, METRICSD_V2LANE_DAEMON_PKGS  the packages (for a
#                                   quicker run while working on the lane)
#   METRICSD_V2LANE_CRASH_FIRST_BOOT=1  the first boot of each kernel panics
#                                   on purpose (no init), to check the retry
#
# A guest kernel that crashes (oops=panic) or hangs before the lane's
# runner starts in it is booted once more, and the lane says so: under QEMU's multi-threaded
# software emulation the kernel's live code patching (static keys) now and
# then races with the other virtual CPU, an "Oops: int3" in the patched
# function (CI stop 19: sched_clock_cpu while the boot marked sched_clock
# stable, 3.7 s in). No test has run then, so the retry can hide no test's
# fault; a crash once the runner has started fails the lane as before.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

repo=$(pwd)
results=${1:-}
kernels=${METRICSD_V2LANE_KERNELS:-6.1 6.12}
daemon_kernel=${METRICSD_V2LANE_DAEMONS-6.1}
cache=${METRICSD_V2LANE_CACHE:-/var/cache/metricsd-v2lane}
boot_timeout=${METRICSD_V2LANE_TIMEOUT:-2400}
# A guest boots to its runner in 5-15 s; one that has not in this long hangs.
start_timeout=300

# The packages every kernel runs, and those the daemon kernel adds.
read -r -a pkgs_all <<<"${METRICSD_V2LANE_PKGS:-./cgroup ./cgroup/job ./netns ./runtime/cgroupfs ./examples/cijob .}"
read -r -a pkgs_daemons <<<"${METRICSD_V2LANE_DAEMON_PKGS-./runtime/containerd ./runtime/docker}"

# Modules the initramfs loads (with what they depend on, from modules.dep):
# virtio PCI, 9p over virtio, overlayfs, ext4 on a virtio disk, and veth
# (netns tests). Built-in ones are skipped.
# crc32c is a soft dependency of ext4 (metadata checksums), not in modules.dep.
initrd_modules=(virtio_pci 9pnet_virtio 9p overlay virtio_blk crc32c_generic ext4 veth)

log() { echo "v2lane: $*"; }
logerr() { echo "v2lane: $*" >&2; }
# skip ends the lane with the reason; under CI=true, where scripts/test.sh
# must have installed everything, it fails instead (as rttest.Need does for
# a daemon), so that a lane that could not run can not pass CI unseen.
skip() {
	if [ "${CI:-}" = true ]; then
		log "FAILED: CI=true and the lane can not run: $*"
		exit 1
	fi
	log "SKIP: $*"
	exit 0
}
die() {
	log "FAILED: $*" >&2
	exit 1
}

if [ "${METRICSD_V2LANE:-1}" = 0 ]; then
	log "SKIP: METRICSD_V2LANE=0"
	exit 0
fi
[ "$(id -u)" = 0 ] || skip "not root (the lane boots kernels with QEMU and downloads them with apt-get; CI runs as root)"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || skip "no apt-get/dpkg-deb: the kernels come from Debian packages"
for tool in qemu-system-x86_64 busybox mkfs.ext4 depmod xz go; do
	command -v "$tool" >/dev/null || skip "$tool not installed (scripts/test.sh installs qemu-system-x86, busybox-static, e2fsprogs, kmod, xz-utils)"
done
[ "$(uname -m)" = x86_64 ] || skip "not an x86_64 host"

tmp=$(mktemp -d /tmp/v2lane.XXXXXX)
qemu_pid=""
cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill -KILL "$qemu_pid" 2>/dev/null || true
		wait "$qemu_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
lane=$tmp/lane # the guest's writable share
mkdir -p "$lane/bin" "$lane/out"

# kernel_package VERSION prints the Debian package name of a kernel line.
kernel_package() {
	case $1 in
	6.1) apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\.0-[0-9]+-amd64$/ { print $2; exit }' ;;
	*) apt-cache pkgnames "linux-image-$1." 2>/dev/null | grep -E "^linux-image-${1//./\\.}\.[0-9]+\+deb[0-9]+-amd64\$" | sort -V | tail -1 ;;
	esac
}

apt_updated=""
apt_update() {
	[ -n "$apt_updated" ] && return 1
	apt_updated=1
	logerr "apt-get update"
	apt-get update -qq >/dev/null 2>&1 || logerr "apt-get update failed"
}

# fetch_kernel VERSION: downloads, unpacks and prepares one kernel in the
# cache (once per package version); prints its directory.
fetch_kernel() {
	local v=$1 pkg ver dir stage=$cache/.new-$1 kver
	resolve() {
		pkg=$(kernel_package "$v")
		[ -n "$pkg" ] && ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
		dir=$cache/${pkg}_$ver
		[ -n "$pkg" ] && [ -n "$ver" ] && [ "$ver" != "(none)" ]
	}
	download() {
		rm -rf "$stage"
		mkdir -p "$stage/deb"
		chown _apt "$stage/deb" 2>/dev/null || true # apt-get download's sandbox user
		(cd "$stage/deb" && apt-get download -qq "$pkg=$ver" >/dev/null 2>&1)
	}
	# The package lists may be old (test.sh updates them only to install):
	# update once when the package is unknown or no longer downloadable.
	if ! resolve; then
		apt_update || true
		resolve || die "no Debian package for kernel $v"
	fi
	if [ ! -e "$dir/.complete" ] && ! download; then
		apt_update || true
		resolve || die "no Debian package for kernel $v"
		if [ ! -e "$dir/.complete" ]; then
			download || die "apt-get download $pkg=$ver failed"
		fi
	fi
	if [ ! -e "$dir/.complete" ]; then
		dpkg-deb -x "$stage"/deb/*.deb "$stage/root"
		rm -rf "$stage/deb"
		kver=$(ls "$stage/root/lib/modules")
		depmod -b "$stage/root" "$kver"
		mv "$stage/root/boot/vmlinuz-$kver" "$stage/vmlinuz"
		echo "$kver" >"$stage/release"
		touch "$stage/.complete"
		rm -rf "$dir" && mv "$stage" "$dir"
		logerr "kernel $v: $pkg $ver ($kver) unpacked into $dir"
	fi
	rm -rf "$stage"
	echo "$dir"
}

# module_order DIR KVER: the initrd modules and their dependencies, each
# after what it needs, as paths relative to lib/modules/KVER.
module_order() {
	local dep=$1/root/lib/modules/$2/modules.dep builtin=$1/root/lib/modules/$2/modules.builtin
	awk -v want="${initrd_modules[*]}" -v builtin="$builtin" '
	function base(p,   b) { b = p; sub(/.*\//, "", b); sub(/\.ko(\.[a-z]+)?$/, "", b); gsub(/-/, "_", b); return b }
	function visit(p,   n, i, d) {
		if (p in seen) return
		seen[p] = 1
		n = split(deps[p], d, " ")
		for (i = 1; i <= n; i++) visit(d[i])
		print p
	}
	FILENAME == builtin { b = $0; sub(/.*\//, "", b); sub(/\.ko$/, "", b); gsub(/-/, "_", b); isbuiltin[b] = 1; next }
	{ p = $1; sub(/:$/, "", p); $1 = ""; deps[p] = $0; byname[base(p)] = p }
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			m = w[i]; gsub(/-/, "_", m)
			if (m in byname) visit(byname[m])
			else if (!(m in isbuiltin)) { print "missing module " m > "/dev/stderr"; exit 1 }
		}
	}' "$builtin" "$dep"
}

# initrd DIR: a tiny initramfs (busybox-static, the modules, and an init
# that mounts the host's / and the lane share and switches to
# scripts/v2lane-guest.sh), built once per kernel and version of this
# script's recipe; prints its path.
initrd() {
	local dir=$1 kver sum
	kver=$(cat "$dir/release")
	sum=$( (declare -f build_initrd module_order; echo "${initrd_modules[*]}"; busybox | head -1) | sha256sum | cut -c1-12)
	if [ ! -s "$dir/initrd-$sum" ]; then
		rm -f "$dir"/initrd-*
		build_initrd "$dir" "$kver" "$dir/initrd-$sum.new" && mv "$dir/initrd-$sum.new" "$dir/initrd-$sum"
	fi
	echo "$dir/initrd-$sum"
}

build_initrd() {
	local dir=$1 kver=$2 dst=$3 ir m n=0
	ir=$(mktemp -d "$tmp/initrd.XXXX")
	mkdir -p "$ir"/{bin,dev,proc,sys,lower,upper,newroot,modules}
	cp /bin/busybox "$ir/bin/busybox"
	for a in sh mount umount insmod mkdir switch_root cat echo sleep; do
		ln -s busybox "$ir/bin/$a"
	done
	local order
	order=$(module_order "$dir" "$kver") || die "kernel $kver lacks modules the lane needs"
	for m in $order; do
		n=$((n + 1))
		local out
		out=$ir/modules/$(printf '%02d' $n)-$(basename "${m%%.ko*}").ko
		case $m in
		*.ko.xz) xz -dc "$dir/root/lib/modules/$kver/$m" >"$out" ;;
		*.ko.zst) zstd -qdc "$dir/root/lib/modules/$kver/$m" >"$out" ;;
		*.ko) cp "$dir/root/lib/modules/$kver/$m" "$out" ;;
		esac
	done
	cat >"$ir/init" <<'EOF'
#!/bin/sh
# v2lane initramfs: load the modules, mount the host's / (read-only, 9p)
# under a tmpfs overlay and the lane share, and hand over to the guest script.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /modules/*.ko; do
	insmod "$m" || echo "v2lane-init: insmod $m failed"
done
fail() { echo "v2lane-init: $*"; echo o >/proc/sysrq-trigger; sleep 10; }
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /lower || fail "mount hostroot"
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/u /upper/w
mount -t overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w overlay /newroot || fail "mount overlay"
mkdir -p /newroot/lane
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=none lane /newroot/lane || fail "mount lane"
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/bash /lane/guest.sh
EOF
	chmod 755 "$ir/init"
	(cd "$ir" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$dst"
	rm -rf "$ir"
}

# The test binaries, built once for every kernel.
build_tests() {
	local p name
	for p in "${pkgs_all[@]}" "${pkgs_daemons[@]}"; do
		name=$(pkgname "$p")
		# Static, as the daemon is built to deploy (README): the binaries
		# need nothing from the guest but the kernel.
		CGO_ENABLED=0 go test -c -vet=off -o "$lane/bin/$name.test" "$p" || die "go test -c $p"
	done
}
# lane_servers prints VAR=path for each test server the host's run has.
lane_servers() {
	local v bin
	for v in METRICSD_TEST_INFLUXD METRICSD_TEST_PROMETHEUS METRICSD_TEST_PROMTOOL METRICSD_TEST_VICTORIAMETRICS METRICSD_TEST_OTLPRECEIVER; do
		bin=${!v:-}
		[ -n "$bin" ] && [ -x "$bin" ] || continue
		case "$bin" in
		/tmp/*)
			mkdir -p "$lane/servers"
			cp "$bin" "$lane/servers/" || continue
			bin=/lane/servers/$(basename "$bin")
			;;
		esac
		printf '%s=%s ' "$v" "$bin"
	done
}
pkgname() { if [ "$1" = . ]; then echo metricsd; else echo "${1#./}" | tr / _; fi; }

# boot LABEL DIR INITRD ATTEMPT: runs the guest for one kernel and waits
# for it.
boot() {
	local label=$1 dir=$2 initrd=$3 attempt=$4 mem=1536 daemons=0 pkgs=("${pkgs_all[@]}") p
	if [ "$label" = "$daemon_kernel" ]; then
		daemons=1 mem=3072
		pkgs+=("${pkgs_daemons[@]}")
	fi
	local out=$lane/out/$label
	rm -rf "$out"
	mkdir -p "$out"
	{
		echo "LABEL=$label"
		echo "REPO=$repo"
		echo "DAEMONS=$daemons"
		# Under CI=true a daemon test fails rather than skips (rttest.Need):
		# so in the daemon guest too, where the daemons must have started.
		if [ "$daemons" = 1 ]; then echo "CI=${CI:-}"; fi
		# The daemon guest also has the test servers (scripts/servers.sh,
		# which test.sh sourced): the OOM and hostile-value tests check
		# every sink on v2 too. Run from the share; a binary under the
		# host's /tmp (the OTLP receiver: the guest's /tmp is its own disk)
		# is copied into the lane's directory.
		if [ "$daemons" = 1 ]; then printf 'SERVERS="%s"\n' "$(lane_servers)"; fi
		echo "KMODULES=$dir/root/lib/modules/$(cat "$dir/release")"
		# -test.short: TestChurn's minute of churn (200 containers through
		# ctr) needs native speed; it runs on the host.
		echo "SHORT=metricsd"
		# Run while the daemons start: they need none.
		echo "EARLY='cgroup netns'"
		printf 'TESTS="'
		for p in "${pkgs[@]}"; do printf '%s:%s ' "$(pkgname "$p")" "$p"; done
		echo '"'
	} >"$lane/job"
	cp scripts/v2lane-guest.sh "$lane/guest.sh"
	chmod 755 "$lane/guest.sh"
	rm -f "$tmp/disk.img"
	truncate -s 4G "$tmp/disk.img"
	mkfs.ext4 -q -F -L v2lane "$tmp/disk.img"
	local t0=$SECONDS append="console=ttyS0 panic=-1 psi=1 cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 transparent_hugepage=madvise oops=panic quiet"
	if [ "${METRICSD_V2LANE_CRASH_FIRST_BOOT:-}" = 1 ] && [ "$attempt" = 1 ]; then
		append+=" rdinit=/v2lane-no-such-init root=/dev/v2lane-no-such-disk"
	fi
	qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m "$mem" \
		-display none -monitor none -serial "file:$tmp/console-$label.log" -no-reboot -nic none \
		-kernel "$dir/vmlinuz" -initrd "$initrd" \
		-append "$append" \
		-fsdev "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap" \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-fsdev "local,id=lane,path=$lane,security_model=none,multidevs=remap" \
		-device virtio-9p-pci,fsdev=lane,mount_tag=lane \
		-drive "file=$tmp/disk.img,if=virtio,format=raw,cache=unsafe" \
		</dev/null >"$tmp/qemu-$label.log" 2>&1 &
	qemu_pid=$!
	local killed=""
	while kill -0 "$qemu_pid" 2>/dev/null; do
		if [ ! -e "$out/guest.log" ] && [ $((SECONDS - t0)) -gt "$start_timeout" ]; then
			log "kernel $label: the lane's runner did not start in the guest within ${start_timeout}s: killing QEMU (pid $qemu_pid)"
			kill -KILL "$qemu_pid" 2>/dev/null || true
			killed=1
			break
		fi
		if [ $((SECONDS - t0)) -gt "$boot_timeout" ]; then
			log "kernel $label: guest still running after ${boot_timeout}s: killing QEMU (pid $qemu_pid)"
			kill -KILL "$qemu_pid" 2>/dev/null || true
			killed=1
			break
		fi
		sleep 1
	done
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=""
	log "kernel $label ($(cat "$dir/release")): guest ran $((SECONDS - t0)) s"
	if [ -n "$killed" ] || [ ! -e "$out/done" ]; then
		log "kernel $label: the guest did not finish; QEMU said:"
		tail -5 "$tmp/qemu-$label.log" | sed 's/^/  /'
		log "console tail:"
		tail -40 "$tmp/console-$label.log" | sed 's/^/  /'
		return 1
	fi
}

# crashed_before_runner LABEL: whether the last guest failed before the
# lane's runner in it wrote its log (so before any test ran): its kernel
# panicked (oops=panic: an oops too) or it hung booting.
crashed_before_runner() {
	[ ! -e "$lane/out/$1/guest.log" ]
}

# report LABEL: the counts per package, skip reasons, failures in full.
report() {
	local label=$1 out=$lane/out/$1 ok=0 name rc pass fail skips f
	for f in "$out"/*.rc; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .rc)
		f=$out/$name.log
		rc=$(cat "$out/$name.rc" 2>/dev/null || echo missing)
		pass=$(grep -c -E -- '^\s*--- PASS' "$f" || true)
		fail=$(grep -c -E -- '^\s*--- FAIL' "$f" || true)
		skips=$(grep -c -E -- '^\s*--- SKIP' "$f" || true)
		log "kernel $label $name: $pass passed, $fail failed, $skips skipped (exit $rc, $(cat "$out/$name.secs" 2>/dev/null || echo ?) s)"
		if [ "$rc" != 0 ]; then
			ok=1
			sed 's/^/  | /' "$f" | grep -v -E -- '--- PASS|^  \| === (RUN|PAUSE|CONT)' | tail -200
		fi
		if [ -n "$results" ]; then
			# test.sh lists the skips with their reasons from here.
			sed "s/^/[v2 $label] /" "$f" >>"$results"
		else
			grep -B1 -E -- '--- SKIP' "$f" | grep -v '^--$' | sed "s/^/  skip ($label $name): /" || true
		fi
	done
	if [ -s "$out/guest.log" ] && [ $ok != 0 ]; then
		log "kernel $label: guest log tail:"
		tail -30 "$out/guest.log" | sed 's/^/  /'
	fi
	return $ok
}

t_start=$SECONDS
mkdir -p "$cache"
declare -A kdir
for k in $kernels; do
	kdir[$k]=$(fetch_kernel "$k")
done
# Older versions of the same kernel lines are stale.
for k in $kernels; do
	for d in "$cache/linux-image-$k."*; do
		if [ -e "$d" ] && [ "$d" != "${kdir[$k]}" ]; then rm -rf "$d"; fi
	done
done
log "kernels ready ($((SECONDS - t_start)) s)"
t_build=$SECONDS
build_tests
log "test binaries built ($((SECONDS - t_build)) s)"

status=0
for k in $kernels; do
	if ! boot "$k" "${kdir[$k]}" "$(initrd "${kdir[$k]}")" 1; then
		if crashed_before_runner "$k"; then
			log "kernel $k: the guest failed before any test ran (above): booting it once more (see the header: QEMU's emulation and live code patching)"
			boot "$k" "${kdir[$k]}" "$(initrd "${kdir[$k]}")" 2 || status=1
		else
			status=1
		fi
	fi
	report "$k" || status=1
done
log "lane wall time $((SECONDS - t_start)) s"
[ $status = 0 ] || die "a test failed or a guest did not finish (above)"
log "ok"
