package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	v2Load = "testdata/cgroup2-kernel6.18/sys/fs/cgroup/fixture_load"
	v1Dock = "testdata/cgroup1-hybrid-kernel6.18-docker20.10/sys/fs/cgroup"
	v1ID   = "docker/7ec3cf760992fea9cf4b35bcf24244de1d990536cd65c103877576cb4d8dad62"
)

// seed adds the named capture files (paths under testdata) to a fuzz corpus.
func seed(f *testing.F, files ...string) {
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkErr fails unless err is nil or a parse error at a line within the
// input, so every failure is one ParseError can report.
func checkErr(t *testing.T, in []byte, err error) {
	if err == nil {
		return
	}
	var le *lineError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a line error", err, err)
	}
	lines := 1
	for _, c := range in {
		if c == '\n' {
			lines++
		}
	}
	if le.line < 0 || le.line > lines {
		t.Fatalf("error at line %d of a %d-line input", le.line, lines)
	}
}

func v1(name string) string { return filepath.Join(v1Dock, name) }

func FuzzCPUStat(f *testing.F) {
	seed(f, v2Load+"/cpu.stat", v1("cpu/"+v1ID+"/cpu.stat"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c CPUStats
		checkErr(t, b, parseCPUStat(b, true, &c))
		checkErr(t, b, parseCPUStat(b, false, &c))
	})
}

func FuzzCPUMax(f *testing.F) {
	seed(f, v2Load+"/cpu.max")
	f.Add([]byte("max 100000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c CPUStats
		checkErr(t, b, parseCPUMax(b, &c))
		checkErr(t, b, parseCFSQuota(b, &c))
	})
}

func FuzzCPUAcctStat(f *testing.F) {
	seed(f, v1("cpuacct/"+v1ID+"/cpuacct.stat"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, hz := range []uint64{0, 100, 300, 1000} {
			var c CPUStats
			err := parseCPUAcctStat(b, hz, &c)
			checkErr(t, b, err)
			// A Known time is a whole number of ticks, and hz 0 gives none.
			for _, v := range []Value{c.User, c.System} {
				if v.State == Known && (hz == 0 || 1e9%hz == 0 && v.V%(1e9/hz) != 0) {
					t.Fatalf("hz %d: %v", hz, v)
				}
			}
		}
	})
}

func FuzzUsagePerCPU(f *testing.F) {
	seed(f, v1("cpuacct/"+v1ID+"/cpuacct.usage_percpu"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c CPUStats
		err := parseUsagePerCPU(b, &c)
		checkErr(t, b, err)
		if err == nil && len(c.PerCPU) > 0 {
			var sum uint64
			for _, v := range c.PerCPU {
				sum += v
			}
			if c.Usage != known(sum) {
				t.Fatalf("usage %v != per-CPU sum %d", c.Usage, sum)
			}
		}
		if err == nil && len(c.PerCPU) == 0 && c.Usage.Available() {
			t.Fatalf("usage %v with no per-CPU figure", c.Usage)
		}
	})
}

func FuzzMemoryStat(f *testing.F) {
	seed(f, v2Load+"/memory.stat", v1("memory/"+v1ID+"/memory.stat"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m MemoryStats
		checkErr(t, b, parseMemoryStat(b, true, &m))
		checkErr(t, b, parseMemoryStat(b, false, &m))
		deriveMemory(&m)
		if m.WorkingSet.State == Known && m.WorkingSet.V > m.Usage.V {
			t.Fatalf("working set %v above usage %v", m.WorkingSet, m.Usage)
		}
	})
}

func FuzzMemoryEvents(f *testing.F) {
	seed(f, v2Load+"/memory.events", v1("memory/"+v1ID+"/memory.oom_control"), v2Load+"/memory.swap.events", v2Load+"/pids.events")
	f.Fuzz(func(t *testing.T, b []byte) {
		var e MemoryEvents
		checkErr(t, b, parseMemoryEvents(b, &e))
		checkErr(t, b, parseOOMControl(b, &e))
		var se SwapEvents
		checkErr(t, b, parseSwapEvents(b, &se))
	})
}

func FuzzIOStat(f *testing.F) {
	seed(f, v2Load+"/io.stat")
	f.Add([]byte("253:0 254:0 rbytes=1 wbytes=2\n(unknown) rbytes=3\n8:0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var io IOStats
		err := parseIOStat(b, &io)
		checkErr(t, b, err)
		seen := map[devNum]bool{}
		for _, x := range io.Devices {
			if seen[devNum{x.Major, x.Minor}] {
				t.Fatalf("device %d:%d twice", x.Major, x.Minor)
			}
			seen[devNum{x.Major, x.Minor}] = true
		}
		if err == nil {
			checkIOTotals(t, &io, ioAll)
		}
	})
}

func FuzzBlkio(f *testing.F) {
	seed(f, v1("blkio/"+v1ID+"/blkio.throttle.io_service_bytes"))
	f.Add([]byte("8:0 Read 1024\n8:0 Write 0\n8:0 Sync 0\n8:0 Async 1024\n8:0 Discard 0\n8:0 Total 1024\n(unknown) Read 1\nTotal 1024\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var io IOStats
		if err := parseBlkio(b, true, &io); err == nil {
			checkIOTotals(t, &io, ioBytes)
		} else {
			checkErr(t, b, err)
		}
		if err := parseBlkio(b, false, &io); err == nil {
			checkIOTotals(t, &io, ioOps)
		} else {
			checkErr(t, b, err)
		}
	})
}

func FuzzPSI(f *testing.F) {
	seed(f, v2Load+"/cpu.pressure", v2Load+"/io.pressure", "testdata/cgroup2-kernel6.18/proc/pressure/memory")
	f.Fuzz(func(t *testing.T, b []byte) {
		var p PSI
		checkErr(t, b, parsePSI(b, &p))
	})
}

func FuzzSingle(f *testing.F) {
	seed(f, v2Load+"/memory.current", v2Load+"/memory.max", v2Load+"/hugetlb.2MB.max", v2Load+"/hugetlb.2MB.events")
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Value
		checkErr(t, b, single(b, &v))
		checkErr(t, b, limitFile(b, pageRoundedMax(4096), &v))
		checkErr(t, b, parseHugetlbEvents(b, &v))
	})
}

func FuzzMountinfo(f *testing.F) {
	seed(f, "testdata/cgroup2-kernel6.18/proc/mountinfo", "testdata/cgroup1-hybrid-kernel6.18-docker20.10/proc/mountinfo")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parseMountinfo(b)
		checkErr(t, b, err)
	})
}

func FuzzProcCgroup(f *testing.F) {
	seed(f, "testdata/cgroup1-hybrid-kernel6.18-docker20.10/proc/container_pid_cgroup")
	f.Add([]byte("0::/../../x\n"))
	f.Add([]byte("0::/system.slice/x.scope (deleted)\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, deleted, err := parseProcCgroup(b)
		if deleted && !strings.HasSuffix(p[""], deletedSuffix) {
			t.Fatalf("deleted, unified path %q", p[""])
		}
		checkErr(t, b, err)
		for _, path := range p {
			// Whatever the file says, a resolved directory never climbs
			// out of its mount.
			if rel, err := relativeTo("/", path); err == nil && (rel == ".." || len(rel) > 2 && rel[:3] == "../") {
				t.Fatalf("%q resolved to %q", path, rel)
			}
		}
	})
}

func FuzzPartitions(f *testing.F) {
	seed(f, "testdata/cgroup2-kernel6.18/proc/partitions")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := parsePartitions(b)
		checkErr(t, b, err)
	})
}

// BenchmarkParse measures each parser on the v2 capture (and the v1 files
// v2 has no equivalent of).
func BenchmarkParse(b *testing.B) {
	read := func(name string) []byte {
		buf, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		return buf
	}
	var s Stats
	for _, bc := range []struct {
		name string
		file string
		fn   func([]byte) error
	}{
		{"cpu.stat", v2Load + "/cpu.stat", func(x []byte) error { return parseCPUStat(x, true, &s.CPU) }},
		{"cpu.max", v2Load + "/cpu.max", func(x []byte) error { return parseCPUMax(x, &s.CPU) }},
		{"memory.stat", v2Load + "/memory.stat", func(x []byte) error { return parseMemoryStat(x, true, &s.Memory) }},
		{"memory.events", v2Load + "/memory.events", func(x []byte) error { return parseMemoryEvents(x, &s.Memory.Events) }},
		{"memory.current", v2Load + "/memory.current", func(x []byte) error { return single(x, &s.Memory.Usage) }},
		{"memory.max", v2Load + "/memory.max", func(x []byte) error { return limitFile(x, pageRoundedMax(4096), &s.Memory.Limit) }},
		{"io.stat", v2Load + "/io.stat", func(x []byte) error { s.IO.Devices = s.IO.Devices[:0]; return parseIOStat(x, &s.IO) }},
		{"cpu.pressure", v2Load + "/cpu.pressure", func(x []byte) error { return parsePSI(x, &s.Pressure.CPU) }},
		{"hugetlb.2MB.events", v2Load + "/hugetlb.2MB.events", func(x []byte) error { return parseHugetlbEvents(x, &s.Pids.Current) }},
		{"v1/memory.stat", v1("memory/" + v1ID + "/memory.stat"), func(x []byte) error { return parseMemoryStat(x, false, &s.Memory) }},
		{"v1/cpuacct.stat", v1("cpuacct/" + v1ID + "/cpuacct.stat"), func(x []byte) error { return parseCPUAcctStat(x, 100, &s.CPU) }},
		{"v1/cpuacct.usage_percpu", v1("cpuacct/" + v1ID + "/cpuacct.usage_percpu"), func(x []byte) error { return parseUsagePerCPU(x, &s.CPU) }},
	} {
		data := read(bc.file)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := bc.fn(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// checkIOTotals checks the totals in set against the devices: the sum of
// the Known device values, Known 0 without devices, Unavailable when
// devices exist and none has the counter (or the sum overflows).
func checkIOTotals(t *testing.T, io *IOStats, set uint8) {
	t.Helper()
	for k := uint8(1); k <= ioDiscardOps; k <<= 1 {
		if set&k == 0 {
			continue
		}
		var sum uint64
		n, overflow := 0, false
		for i := range io.Devices {
			if v, ok := io.Devices[i].counter(k).Get(); ok {
				overflow = overflow || sum+v < sum
				sum += v
				n++
			}
		}
		want := known(sum)
		if overflow || n == 0 && len(io.Devices) > 0 {
			want = Value{}
		}
		if got := *io.total(k); got != want {
			t.Fatalf("total %d = %v, want %v (devices %+v)", k, got, want, io.Devices)
		}
	}
}
