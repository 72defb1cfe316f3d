package cgroup

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// wantLineErr checks that err is a parse error at line with the given cause.
func wantLineErr(t *testing.T, err error, line int, cause error) {
	t.Helper()
	var le *lineError
	if !errors.As(err, &le) || le.line != line || !errors.Is(err, cause) {
		t.Errorf("error = %v, want line %d: %v", err, line, cause)
	}
}

func TestBadInput(t *testing.T) {
	t.Run("truncated line", func(t *testing.T) {
		var c CPUStats
		err := parseCPUStat([]byte("nr_periods 36\nnr_throttled"), false, &c)
		wantLineErr(t, err, 2, strconv.ErrSyntax)
		var m MemoryStats
		wantLineErr(t, parseMemoryStat([]byte("total_cache 1\ntotal_rss\n"), false, &m), 2, strconv.ErrSyntax)
		var p PSI
		wantLineErr(t, parsePSI([]byte("some avg10=0.00 avg60=0.00\n"), &p), 1, strconv.ErrSyntax)
		var io IOStats
		wantLineErr(t, parseBlkio([]byte("8:0 Read\n"), true, &io), 1, strconv.ErrSyntax)
		wantLineErr(t, parseIOStat([]byte("8:0 rbytes=\n"), &io), 1, strconv.ErrSyntax)
		wantLineErr(t, parseCPUMax([]byte("max"), &c), 1, strconv.ErrSyntax)
	})
	t.Run("truncated line of an unknown key is ignored", func(t *testing.T) {
		var m MemoryStats
		if err := parseMemoryStat([]byte("future_key\ntotal_rss 5\n"), false, &m); err != nil || m.Anon != known(5) {
			t.Errorf("got %v, anon %v", err, m.Anon)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		var v Value
		wantLineErr(t, single(nil, &v), 1, strconv.ErrSyntax)
		wantLineErr(t, single([]byte("\n"), &v), 1, strconv.ErrSyntax)
		var c CPUStats
		if err := parseCPUStat(nil, true, &c); err != nil || c.Usage.Available() {
			t.Errorf("empty cpu.stat: %v, usage %v: want no error, unavailable", err, c.Usage)
		}
		var p PSI
		if err := parsePSI(nil, &p); err != nil || p.Some.Available() || p.Some.Total.Available() {
			t.Errorf("empty pressure file: %v %+v", err, p)
		}
		var io IOStats
		if err := parseIOStat(nil, &io); err != nil || len(io.Devices) != 0 || io.ReadBytes != known(0) {
			t.Errorf("empty io.stat: %v %+v, want no device and Known 0 totals", err, io)
		}
	})
	t.Run("max", func(t *testing.T) {
		var v Value
		if err := limitFile([]byte("max\n"), pageRoundedMax(4096), &v); err != nil || v != unlimited {
			t.Errorf("max: %v %v", v, err)
		}
		var c CPUStats
		if err := parseCPUMax([]byte("max 100000\n"), &c); err != nil || c.Quota != unlimited || c.Period != known(100000_000) {
			t.Errorf("cpu.max: %v %+v", err, c)
		}
		if _, st := c.LimitCores(); st != Unlimited {
			t.Errorf("LimitCores state %v, want unlimited", st)
		}
		if err := parseCFSQuota([]byte("-1\n"), &c); err != nil || c.Quota != unlimited {
			t.Errorf("cfs_quota_us -1: %v %v", err, c.Quota)
		}
	})
	t.Run("page-rounded 2^63 is unlimited", func(t *testing.T) {
		for _, page := range []uint64{4096, 16384, 65536} {
			max := pageRoundedMax(page)
			var v Value
			if err := limitFile([]byte(strconv.FormatUint(max, 10)), max, &v); err != nil || v != unlimited {
				t.Errorf("page %d: %d gave %v %v", page, max, v, err)
			}
			if err := limitFile([]byte(strconv.FormatUint(max-page, 10)), max, &v); err != nil || v != known(max-page) {
				t.Errorf("page %d: %d gave %v %v, want known", page, max-page, v, err)
			}
		}
		if pageRoundedMax(4096) != 9223372036854771712 {
			t.Errorf("pageRoundedMax(4096) = %d", pageRoundedMax(4096))
		}
	})
	t.Run("v1 hugetlb: 2^63 rounded to the huge page is unlimited", func(t *testing.T) {
		// 9223372035781033984 is what Debian's 6.1 kernel printed for an
		// unset hugetlb.1GB.limit_in_bytes (issue 10); TestHugetlbV1
		// reads a real unset 2MB limit.
		pageMax := pageRoundedMax(4096)
		for _, c := range []struct {
			size  string
			limit uint64
			want  Value
		}{
			{"1GB", 9223372035781033984, unlimited},
			{"2MB", 9223372036852678656, unlimited},
			{"2MB", 9223372036852678656 - 2<<20, known(9223372036852678656 - 2<<20)},
			{"64KB", pageRoundedMax(64 << 10), unlimited},
			{"1GB", 4 << 30, known(4 << 30)},
			{"odd", pageMax, unlimited},
			{"odd", pageMax - 4096, known(pageMax - 4096)},
		} {
			var v Value
			if err := limitFile([]byte(strconv.FormatUint(c.limit, 10)+"\n"), hugeUnlimitedFrom(c.size, pageMax), &v); err != nil || v != c.want {
				t.Errorf("%s %d: %v %v, want %v", c.size, c.limit, v, err, c.want)
			}
		}
	})
	t.Run("(unknown) devices", func(t *testing.T) {
		var io IOStats
		err := parseBlkio([]byte("(unknown) Read 5\n8:0 Read 10\n8:0 Write 7\n8:0 Total 17\nTotal 22\n"), true, &io)
		if err != nil || !reflect.DeepEqual(io.Devices, []IODevice{{Major: 8, Minor: 0, ReadBytes: known(10), WriteBytes: known(7)}}) {
			t.Errorf("blkio: %v %+v", err, io.Devices)
		}
		io = IOStats{}
		err = parseIOStat([]byte("(unknown) rbytes=5\n8:16 rbytes=1 wbytes=2\n"), &io)
		if err != nil || !reflect.DeepEqual(io.Devices, []IODevice{{Major: 8, Minor: 16, ReadBytes: known(1), WriteBytes: known(2)}}) {
			t.Errorf("io.stat: %v %+v", err, io.Devices)
		}
	})
	t.Run("several devices on one io.stat line", func(t *testing.T) {
		var io IOStats
		err := parseIOStat([]byte("253:0 254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 253:1 rbytes=9\n"), &io)
		want := []IODevice{
			{Major: 254, ReadBytes: known(1), WriteBytes: known(2), ReadOps: known(3), WriteOps: known(4), DiscardBytes: known(5), DiscardOps: known(6)},
			{Major: 253, Minor: 1, ReadBytes: known(9)},
		}
		if err != nil || !reflect.DeepEqual(io.Devices, want) {
			t.Errorf("got %v %+v, want %+v", err, io.Devices, want)
		}
	})
	t.Run("device IDs with no values", func(t *testing.T) {
		var io IOStats
		err := parseIOStat([]byte("8:0\n8:16 rbytes=5\n8:32 \n"), &io)
		if err != nil || !reflect.DeepEqual(io.Devices, []IODevice{{Major: 8, Minor: 16, ReadBytes: known(5)}}) {
			t.Errorf("got %v %+v", err, io.Devices)
		}
	})
	t.Run("negative values from kernel bugs", func(t *testing.T) {
		m := MemoryStats{Usage: known(1000)}
		if err := parseMemoryStat([]byte("total_inactive_file -4096\ntotal_rss 10\n"), false, &m); err != nil {
			t.Fatal(err)
		}
		deriveMemory(&m)
		if m.InactiveFile.Available() || m.WorkingSet.Available() || m.Anon != known(10) {
			t.Errorf("inactive %v working set %v anon %v: want unavailable, unavailable, 10", m.InactiveFile, m.WorkingSet, m.Anon)
		}
		var io IOStats
		if err := parseBlkio([]byte("8:0 Read -5\n8:0 Write 3\n"), true, &io); err != nil || io.Devices[0].ReadBytes.Available() || io.Devices[0].WriteBytes != known(3) {
			t.Errorf("blkio: %v %+v", err, io.Devices)
		}
		io = IOStats{}
		if err := parseIOStat([]byte("8:0 rbytes=-5 wbytes=3\n"), &io); err != nil || io.Devices[0].ReadBytes.Available() || io.Devices[0].WriteBytes != known(3) {
			t.Errorf("io.stat: %v %+v", err, io.Devices)
		}
		var c CPUStats
		if err := parseUsagePerCPU([]byte("5 -1 7\n"), &c); err != nil || c.Usage.Available() || len(c.PerCPU) != 0 {
			t.Errorf("usage_percpu with a negative CPU: %v %+v, want per-CPU and usage unavailable", err, c)
		}
		if err := parseCPUAcctStat([]byte("user 5\nsystem -7\n"), 100, &c); err != nil || c.User != known(50e6) || c.System.Available() {
			t.Errorf("cpuacct.stat with a negative value: %v %+v, want user 50 ms and system unavailable", err, c)
		}
	})
	t.Run("unknown keys are ignored", func(t *testing.T) {
		var c CPUStats
		if err := parseCPUStat([]byte("usage_usec 5\nnew_key x y z\nnr_periods 2\n"), true, &c); err != nil || c.Usage != known(5000) || c.Periods != known(2) {
			t.Errorf("%v %+v", err, c)
		}
		var p PSI
		if err := parsePSI([]byte("some avg10=1.00 avg60=2.00 avg300=3.00 total=4 avg5=9.99\nnew x=1\n"), &p); err != nil || p.Some.Total != known(4000) || p.Some.Avg300 != 3 {
			t.Errorf("%v %+v", err, p)
		}
		var io IOStats
		if err := parseIOStat([]byte("8:0 rbytes=1 cost.usage=77 newkey=x\n"), &io); err != nil || io.Devices[0].ReadBytes != known(1) {
			t.Errorf("%v %+v", err, io.Devices)
		}
	})
	t.Run("a number too large for uint64", func(t *testing.T) {
		var m MemoryStats
		wantLineErr(t, parseMemoryStat([]byte("anon 1\nfile 18446744073709551616\n"), true, &m), 2, strconv.ErrRange)
		var io IOStats
		wantLineErr(t, parseIOStat([]byte("8:0 rbytes=99999999999999999999\n"), &io), 1, strconv.ErrRange)
		wantLineErr(t, parseIOStat([]byte("4294967296:0 rbytes=1\n"), &io), 1, strconv.ErrRange)
		var c CPUStats
		// usage_usec fits but its nanoseconds do not.
		wantLineErr(t, parseCPUStat([]byte("usage_usec 18446744073709552\n"), true, &c), 1, strconv.ErrRange)
		if err := parseCPUStat([]byte("usage_usec 18446744073709552\n"), false, &c); err != nil {
			t.Errorf("v1 ignores usage_usec: %v", err)
		}
		var v Value
		wantLineErr(t, single([]byte(strconv.FormatUint(math.MaxUint64, 10)+"0"), &v), 1, strconv.ErrRange)
	})
	t.Run("ParseError names file and line", func(t *testing.T) {
		err := withFile("/sys/fs/cgroup/x/memory.stat", errAt(7, strconv.ErrSyntax))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.File != "/sys/fs/cgroup/x/memory.stat" || pe.Line != 7 || !errors.Is(err, strconv.ErrSyntax) {
			t.Errorf("%#v", err)
		}
		if got := err.Error(); got != "parse /sys/fs/cgroup/x/memory.stat line 7: invalid syntax" {
			t.Errorf("message %q", got)
		}
	})
}

// TestMissingFiles opens the v2 capture's root group, which has no
// memory.current, memory.max or pids files: those fields are Unavailable and
// the rest of Stat succeeds.
func TestMissingFiles(t *testing.T) {
	ctx := t.Context()
	fs, err := NewFS(ctx, WithRoot(fixtureRoot(t, "cgroup2-kernel6.18", nil)))
	if err != nil {
		t.Fatal(err)
	}
	g, err := fs.Open(ctx, "/", All)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var s Stats
	if err := g.Stat(ctx, &s); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]Value{
		"memory usage": s.Memory.Usage, "memory limit": s.Memory.Limit, "working set": s.Memory.WorkingSet,
		"peak": s.Memory.Peak, "pids": s.Pids.Current, "pids limit": s.Pids.Limit, "quota": s.CPU.Quota,
		"weight": s.CPU.Weight, "oom_kill": s.Memory.Events.OOMKill,
	} {
		if v.Available() {
			t.Errorf("%s = %v, want unavailable (no such file at the root)", name, v)
		}
	}
	if !s.Memory.Anon.Available() || !s.CPU.Usage.Available() || !s.IO.ReadBytes.Available() {
		t.Errorf("root memory.stat, cpu.stat and io.stat exist: anon %v usage %v io %v", s.Memory.Anon, s.CPU.Usage, s.IO.ReadBytes)
	}
	if _, err := fs.Open(ctx, "/no-such-group", All); !errors.Is(err, ErrNotExist) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open of a missing group: %v, want ErrNotExist and fs.ErrNotExist", err)
	}
	if _, err := fs.Open(ctx, "/fixture_load/../..", All); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("Open with ..: %v, want ErrInvalidPath", err)
	}
}

func TestMountinfo(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "cgroup1-hybrid-kernel6.18-docker20.10", "proc", "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := parseMountinfo(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 10 {
		t.Fatalf("%d cgroup mounts, want 10: %+v", len(ms), ms)
	}
	if m := ms[0]; m.point != "/sys/fs/cgroup/cpu" || m.root != "/" || m.v2 || !reflect.DeepEqual(m.controllers, []string{"cpu"}) {
		t.Errorf("first mount %+v", m)
	}
	if m := ms[9]; m.point != "/sys/fs/cgroup/unified" || !m.v2 || len(m.controllers) != 0 {
		t.Errorf("last mount %+v", m)
	}
	// Escaped paths, co-mounted controllers, a namespaced root.
	ms, err = parseMountinfo([]byte(`30 25 0:26 /.. /sys/fs/cgroup/cpu\040acct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct,release_agent=/x` + "\n"))
	if err != nil || len(ms) != 1 || ms[0].point != "/sys/fs/cgroup/cpu acct" || ms[0].root != "/.." || !reflect.DeepEqual(ms[0].controllers, []string{"cpu", "cpuacct"}) {
		t.Errorf("got %+v %v", ms, err)
	}
	if _, err := parseMountinfo([]byte("30 25 0:26 / - cgroup2 cgroup2 rw\n")); err == nil {
		t.Error("a cgroup line with too few fields parsed")
	}
}

func TestRelativeTo(t *testing.T) {
	for _, tc := range []struct {
		root, path, want string
		err              error
	}{
		{"/", "/docker/abc", "docker/abc", nil},
		{"/", "/", ".", nil},
		{"/docker/abc", "/docker/abc/sub", "sub", nil}, // bind-mounted subtree
		{"/docker/abc", "/docker/abc", ".", nil},
		{"/docker/abc", "/docker/abd", "", ErrOutsideMount},
		{"/docker", "/system.slice/x.scope", "", ErrOutsideMount},
		// Reader in a cgroup namespace: the host's mount root and the
		// target's path both climb out of it equally.
		{"/..", "/../sibling/x", "sibling/x", nil},
		{"/../..", "/../../kubepods/pod1/c", "kubepods/pod1/c", nil},
		{"/", "/../other", "", ErrOutsideMount},
		{"/..", "/inside", "", ErrOutsideMount},
		{"/", "/a/../b", "", ErrInvalidPath},
		{"/", "relative", "", ErrInvalidPath},
		{"/", "/a\x00b", "", ErrInvalidPath},
	} {
		got, err := relativeTo(tc.root, tc.path)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("relativeTo(%q, %q) = %q, %v; want %q, %v", tc.root, tc.path, got, err, tc.want, tc.err)
		}
	}
	if !errors.Is(ErrOutsideMount, ErrNotExist) {
		t.Error("ErrOutsideMount does not match ErrNotExist")
	}
}

func TestPartitions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "cgroup2-kernel6.18", "proc", "partitions"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parsePartitions(b)
	if err != nil || !reflect.DeepEqual(m, map[devNum]string{{254, 0}: "vda", {254, 16}: "vdb"}) {
		t.Errorf("%v %v", m, err)
	}
	if got := parseUeventDevname([]byte("MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n")); got != "vda" {
		t.Errorf("uevent DEVNAME = %q", got)
	}
}

// copyV2Capture copies the v2 capture into a new host root, with its
// mountinfo at proc/1/mountinfo; files can be changed there.
func copyV2Capture(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(filepath.Join("testdata", "cgroup2-kernel6.18"))); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc/1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(root, "proc/mountinfo"), filepath.Join(root, "proc/1/mountinfo")); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestStatParseError corrupts two files in a copy of the v2 capture: Stat
// returns a *ParseError naming each file and line, leaves the fields of
// those files Unavailable, and reads every other file (it stopped at the
// first bad file, losing CPU, IO and pids with memory.stat).
func TestStatParseError(t *testing.T) {
	ctx := t.Context()
	root := copyV2Capture(t)
	dir := filepath.Join(root, "sys/fs/cgroup/fixture_load")
	badStat, badPids := filepath.Join(dir, "memory.stat"), filepath.Join(dir, "pids.max")
	if err := os.WriteFile(badStat, []byte("anon 1\nfile 12x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(badPids, []byte("lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := NewFS(ctx, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	g, err := fs.Open(ctx, "/fixture_load", All)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var s Stats
	err = g.Stat(ctx, &s)
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	if len(errs) != 2 || !errors.Is(err, strconv.ErrSyntax) {
		t.Fatalf("Stat = %v, want two parse errors joined", err)
	}
	for i, want := range []struct {
		file string
		line int
	}{{badStat, 2}, {badPids, 1}} {
		var pe *ParseError
		if !errors.As(errs[i], &pe) || pe.File != want.file || pe.Line != want.line {
			t.Errorf("error %d = %v, want a ParseError at %s line %d", i, errs[i], want.file, want.line)
		}
	}
	// Everything else is as the capture has it; the two files' fields are
	// Unavailable (anon was read before the bad line: not kept).
	want := fixtureV2Want()
	want.CPU.PerCPU = s.CPU.PerCPU
	m := &want.Memory
	m.Anon, m.File, m.Shmem, m.MappedFile, m.InactiveFile, m.ActiveFile = Value{}, Value{}, Value{}, Value{}, Value{}, Value{}
	m.Kernel, m.Pgfault, m.Pgmajfault, m.WorkingSet = Value{}, Value{}, Value{}, Value{}
	want.Pids.Limit = Value{}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("Stat mismatch\n got %+v\nwant %+v", s, want)
	}
}

// TestLookAgainForFiles: a file that did not exist when the Group was
// opened (a controller enabled later) is read once RefreshLimits has asked
// for it, and not before; a directory made again at the group's path is
// not looked in (its files are another group's). On a copy of the v2
// capture; TestLivePressureOff does it on a live group.
func TestLookAgainForFiles(t *testing.T) {
	ctx := t.Context()
	root := copyV2Capture(t)
	dir := filepath.Join(root, "sys/fs/cgroup/fixture_load")
	stat := filepath.Join(dir, "memory.stat")
	b, err := os.ReadFile(stat)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(stat)
	fs, err := NewFS(ctx, WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	g, err := fs.Open(ctx, "/fixture_load", Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var s Stats
	if err := g.Stat(ctx, &s); err != nil || s.Memory.Anon.Available() || !s.Memory.Usage.Available() {
		t.Fatalf("without memory.stat: %v, anon %v usage %v", err, s.Memory.Anon, s.Memory.Usage)
	}
	if err := os.WriteFile(stat, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.Stat(ctx, &s); err != nil || s.Memory.Anon.Available() {
		t.Errorf("memory.stat back, before RefreshLimits: %v, anon %v, want unavailable", err, s.Memory.Anon)
	}
	g.RefreshLimits()
	if err := g.Stat(ctx, &s); err != nil || s.Memory.Anon != known(331776) {
		t.Errorf("after RefreshLimits: %v, anon %v, want 331776", err, s.Memory.Anon)
	}

	// The same with the directory made again: not looked in.
	pids := filepath.Join(dir, "pids.max")
	os.Remove(pids)
	g2, err := fs.Open(ctx, "/fixture_load", Pids)
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	moved := dir + ".old"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pids, []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g2.RefreshLimits()
	if err := g2.Stat(ctx, &s); err != nil || s.Pids.Limit.Available() || s.Pids.Current != known(3) {
		t.Errorf("a new directory at the path: %v, limit %v current %v; want the old group's current only", err, s.Pids.Limit, s.Pids.Current)
	}
}

// TestEventKeys: every key of memory.events, memory.events.local,
// memory.swap.events and pids.events lands in its own field (distinct
// values, so that a key sent to the wrong field shows), unknown keys are
// skipped, and a key the kernel does not print stays Unavailable.
func TestEventKeys(t *testing.T) {
	var e MemoryEvents
	if err := parseMemoryEvents([]byte("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\noom_group_kill 6\nfuture 7\n"), &e); err != nil {
		t.Fatal(err)
	}
	want := MemoryEvents{Low: known(1), High: known(2), Max: known(3), OOM: known(4), OOMKill: known(5), OOMGroupKill: known(6)}
	if e != want {
		t.Errorf("memory.events: got %+v, want %+v", e, want)
	}
	// A kernel before oom_group_kill (5.17).
	e = MemoryEvents{}
	if err := parseMemoryEvents([]byte("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n"), &e); err != nil {
		t.Fatal(err)
	}
	if e.OOMGroupKill.Available() || e.OOMKill != known(1) {
		t.Errorf("memory.events without oom_group_kill: %+v", e)
	}
	var se SwapEvents
	if err := parseSwapEvents([]byte("high 7\nmax 8\nfail 9\n"), &se); err != nil {
		t.Fatal(err)
	}
	if want := (SwapEvents{High: known(7), Max: known(8), Fail: known(9)}); se != want {
		t.Errorf("memory.swap.events: got %+v, want %+v", se, want)
	}
	se = SwapEvents{}
	if err := parseSwapEvents([]byte("max 3\n"), &se); err != nil || se.High.Available() || se.Fail.Available() || se.Max != known(3) {
		t.Errorf("memory.swap.events of an older kernel (max only): %+v %v", se, err)
	}
	var forks Value
	if err := parseHugetlbEvents([]byte("max 12\n"), &forks); err != nil || forks != known(12) {
		t.Errorf("pids.events: %v %v", forks, err)
	}
	wantLineErr(t, parseSwapEvents([]byte("high 1\nfail x\n"), &se), 2, strconv.ErrSyntax)
}
