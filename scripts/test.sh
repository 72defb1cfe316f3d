#!/usr/bin/env bash
# The one test command of metricsd (CI runs it through .ci/run).
#
# As root with apt available it installs the Debian packages the tests need
# when they are missing (apt-get update only when an install is needed), then
# checks formatting, runs go vet and staticcheck, and runs every test with the
# race detector, in the library module and in bench/, then runs the live tests
# again on pure cgroup v2 kernels in QEMU (scripts/v2lane.sh; METRICSD_V2LANE=0
# skips it). It exits non-zero on any failure and ends by listing every
# skipped test with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

# Debian packages the tests use: iproute2 (ip netns, ss), util-linux (unshare,
# setpriv), procps (ps, for debugging output), and for the deploy/ checks
# systemd (systemd-analyze verify and security, which need no systemd
# running), strace (the unit's filters against the daemon's system calls)
# and ca-certificates (the CA bundle deploy/docker/build.sh puts in the
# image); for the cgroup v2 lane (scripts/v2lane.sh) qemu-system-x86,
# busybox-static (its initramfs), e2fsprogs (its disk), kmod (depmod) and
# xz-utils (6.12's modules); chromium for the live page's browser test
# (internal/pagetest).
packages=(iproute2 util-linux procps systemd strace ca-certificates qemu-system-x86 busybox-static e2fsprogs kmod xz-utils chromium)

missing=()
if command -v dpkg-query >/dev/null; then
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
fi
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "test.sh: installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "test.sh: SKIP installing ${missing[*]}: not root or no apt-get; tests that need them will skip"
	fi
fi

if [ "$(id -u)" != 0 ]; then
	echo "test.sh: not root: tests that create cgroups or namespaces will skip (CI runs as root)"
fi

log=$(mktemp -d)/test.log
cleanup() {
	declare -F daemons_stop >/dev/null && daemons_stop
	declare -F servers_stop >/dev/null && servers_stop
	rm -rf "$(dirname "$log")"
}
trap cleanup EXIT

# Real container runtimes (containerd, dockerd) and servers (InfluxDB,
# Prometheus) for the runtime and sink tests: each script installs what is
# missing, starts its daemons as children in a temp dir, exports where they
# listen, and defines a stop function the EXIT trap calls (stopping by PID).
# TEST_SH_ONLY=lint stops after the formatting, vet and staticcheck steps
# and starts no daemon (internal/testscript runs it on a copy).
only=${TEST_SH_ONLY:-}
for s in scripts/daemons.sh scripts/servers.sh; do
	# shellcheck source=/dev/null
	[ "$only" != lint ] && [ -f "$s" ] && source "$s"
done

status=0
# failed collects one line per failed step; it is printed again at the very
# end, after the skip list, with every failed test's own lines, so that the
# tail of the output (all a CI summary may keep) says what failed.
failed=()
fail() { echo "test.sh: FAILED: $*"; failed+=("$*"); status=1; }
step() { echo "== $*"; "$@" || fail "$*"; }

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "test.sh: gofmt would change:"; echo "$unformatted"; fail "gofmt: $(echo $unformatted)"
fi
step go vet ./...
step go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# go -C, not a subshell: a step's status=1 must reach this shell.
step go -C bench vet ./...
step go -C bench run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# deploy/kubernetes: its own module, the manifests' checks (k8s.io/api).
step go -C deploy/kubernetes vet ./...
step go -C deploy/kubernetes run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# internal/pagetest: its own module, the live page in headless Chromium (chromedp).
step go -C internal/pagetest vet ./...
step go -C internal/pagetest run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
if [ "$only" = lint ]; then
	[ $status -eq 0 ] || { printf 'test.sh: FAILED: %s\n' "${failed[@]}"; exit 1; }
	echo "test.sh: lint passed"; exit 0
fi

echo "== go test -race -count=1 ./...  (and bench/: benchmarks run once each as a smoke test; deploy/kubernetes; internal/pagetest)"
set +e
{
	go test -race -count=1 -v ./... 
	echo "test.sh: go test exit $?"
	(cd bench && go test -count=1 -v -run . -bench . -benchtime=1x ./...)
	echo "test.sh: bench go test exit $?"
	go -C deploy/kubernetes test -count=1 -v ./...
	echo "test.sh: deploy/kubernetes go test exit $?"
	go -C internal/pagetest test -count=1 -v ./...
	echo "test.sh: internal/pagetest go test exit $?"
} >"$log" 2>&1
set -e
if grep -q '^test.sh: .*go test exit [^0]' "$log"; then
	cat "$log"
	fail "go test"
else
	grep -E '^(ok|FAIL|---|PASS|panic)|^\s+--- ' "$log" | grep -v -- '--- PASS' || true
fi

# The cgroup, netns and pread tests again as a 32-bit program (386 runs on
# this kernel): the pread offset is split in two registers there, and
# structures are laid out differently. No -race: it needs a 64-bit target.
echo "== GOARCH=386 go test ./internal/pread ./cgroup ./netns"
if GOARCH=386 go test -count=1 -v ./internal/pread ./cgroup ./netns >"$log.386" 2>&1; then
	grep -E '^(ok|FAIL)' "$log.386" | sed 's/^/386: /'
else
	cat "$log.386"
	fail "GOARCH=386 go test"
fi
cat "$log.386" >>"$log"

# Every fuzz target runs briefly on top of its seed corpus (the seeds run as
# plain tests above already). The budget is a count of executions, not a
# duration: a duration races Go 1.26's fuzz coordinator at its deadline and
# fails with a bare "context deadline exceeded" (golang/go#75804, fixed in
# Go 1.27). FUZZTIME=2000000x for a longer local run.
fuzztime=${FUZZTIME:-50000x}
echo "== fuzz ($fuzztime each)"
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
		if ! out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
			echo "$out"
			fail "fuzz $pkg $f: $(echo "$out" | grep -m1 -E 'panic|Error|FAIL|failing input' || true)"
		else
			echo "ok   fuzz $f ($pkg)"
		fi
	done
done

# The pure cgroup v2 lane: the cgroup, netns, runtime and Collector tests
# again, in QEMU guests booted on Debian's 6.1 and 6.12 kernels with cgroup
# v1 switched off (scripts/v2lane.sh says why when it skips). It appends the
# guests' test output to the log, each line prefixed "[v2 <kernel>] ".
echo "== cgroup v2 lane (scripts/v2lane.sh)"
scripts/v2lane.sh "$log" 2>&1 | tee "$log.lane" || fail "scripts/v2lane.sh"

echo "== skipped tests and why"
# go test -v prints a skipped test's reason on the line before its SKIP line.
grep -B1 -E -- '--- SKIP' "$log" | grep -v '^--$' || echo "(none)"

if [ $status -ne 0 ]; then
	echo "== what failed (again, at the end)"
	# Every failed test's line and the 12 lines after it (its messages), the
	# v2 lane's ("[v2 <kernel>] ") included.
	grep -E -A12 -- '^(\[v2 [^]]*\] )?\s*--- FAIL' "$log" 2>/dev/null | head -200 || true
	# The lane's own lines but those of binaries that passed: a guest that
	# did not finish shows here with its log's tail.
	[ -s "$log.lane" ] && grep -v -E ' 0 failed, ' "$log.lane" | grep -v -E '^\[v2 ' | tail -60
	printf 'test.sh: FAILED: %s\n' "${failed[@]}"
	exit 1
fi
# A closing line in the form CI counts.
passed=$(grep -c -E -- '^(\[v2 [^]]*\] )?\s*--- PASS' "$log" || true)
skipped=$(grep -c -E -- '^(\[v2 [^]]*\] )?\s*--- SKIP' "$log" || true)
echo "test.sh: $passed passed, 0 failed, $skipped skipped"
