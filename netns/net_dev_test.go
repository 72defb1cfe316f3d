package netns

import (
	"strconv"
	"strings"
	"testing"

	"github.com/metricsd/metricsd/internal/parse"
)

// refDev is an independent reader of net/dev: name -> the 16 numbers.
func refDev(t *testing.T, b []byte) ([]string, map[string][16]uint64) {
	t.Helper()
	var names []string
	m := map[string][16]uint64{}
	for _, l := range strings.Split(string(b), "\n")[2:] {
		name, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if len(f) != 16 {
			t.Fatalf("%s: %d fields", name, len(f))
		}
		var v [16]uint64
		for i := range f {
			x, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			v[i] = x
		}
		names = append(names, name)
		m[name] = v
	}
	return names, m
}

// ifaceValues returns it's 16 counters in the file's order; every one must
// be Known (net/dev prints them all).
func ifaceValues(t *testing.T, it *Interface) [16]uint64 {
	t.Helper()
	vs := [16]Value{it.RxBytes, it.RxPackets, it.RxErrors, it.RxDropped, it.RxFIFO, it.RxFrame, it.RxCompressed, it.RxMulticast,
		it.TxBytes, it.TxPackets, it.TxErrors, it.TxDropped, it.TxFIFO, it.TxCollisions, it.TxCarrier, it.TxCompressed}
	var out [16]uint64
	for i, v := range vs {
		n, ok := v.Get()
		if !ok {
			t.Fatalf("%s: counter %d is %v, want Known", it.Name, i, v)
		}
		out[i] = n
	}
	return out
}

func TestParseDevFixtures(t *testing.T) {
	for _, d := range fixtureDirs {
		t.Run(d, func(t *testing.T) {
			b := readFixture(t, d, "dev")
			var s Stats
			if err := parseDev(b, &s); err != nil {
				t.Fatal(err)
			}
			names, ref := refDev(t, b)
			if len(s.Interfaces) != len(names) {
				t.Fatalf("%d interfaces, want %d", len(s.Interfaces), len(names))
			}
			for i := range s.Interfaces {
				it := &s.Interfaces[i]
				if it.Name != names[i] {
					t.Errorf("interface %d = %q, want %q (kernel order)", i, it.Name, names[i])
				}
				if got, want := ifaceValues(t, it), ref[it.Name]; got != want {
					t.Errorf("%s = %v, want %v", it.Name, got, want)
				}
			}
		})
	}
	// A value read off the capture by eye, so the reference reader is not
	// the only oracle.
	var s Stats
	if err := parseDev(readFixture(t, "docker-host", "dev"), &s); err != nil {
		t.Fatal(err)
	}
	if eth := s.Interface("eth0"); eth == nil || eth.RxBytes != known(380348567) || eth.RxPackets != known(21683) || eth.TxBytes != known(1801618) || eth.TxPackets != known(15801) {
		t.Fatalf("eth0 = %+v", eth)
	}
}

// Steady state: the slice and the names are reused, nothing is allocated.
func TestParseDevNoAllocs(t *testing.T) {
	b := readFixture(t, "docker-host", "dev")
	var s Stats
	if err := parseDev(b, &s); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = parseDev(b, &s) }); n != 0 {
		t.Fatalf("%v allocations per parse, want 0", n)
	}
	// An interface renamed in place gets its new name.
	b2 := []byte(strings.Replace(string(b), "ifb1:", "ifb9:", 1))
	if err := parseDev(b2, &s); err != nil {
		t.Fatal(err)
	}
	if s.Interface("ifb9") == nil || s.Interface("ifb1") != nil {
		t.Fatalf("rename not seen: %+v", s.Interfaces)
	}
}

func TestParseDevMalformed(t *testing.T) {
	good := string(readFixture(t, "docker-host", "dev"))
	lines := strings.Split(good, "\n")
	cases := []struct {
		name string
		in   string
		line int
		err  error
	}{
		{"empty", "", 1, parse.ErrSyntax},
		{"no header", lines[2] + "\n", 1, parse.ErrSyntax},
		{"one header line", lines[0] + "\n", 2, parse.ErrSyntax},
		{"truncated line", lines[0] + "\n" + lines[1] + "\n" + lines[2][:40] + "\n", 3, parse.ErrSyntax},
		{"no colon", lines[0] + "\n" + lines[1] + "\n  lo 1 2 3\n", 3, parse.ErrSyntax},
		{"empty name", lines[0] + "\n" + lines[1] + "\n  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 3, parse.ErrSyntax},
		{"17 fields", lines[0] + "\n" + lines[1] + "\n" + lines[2] + " 7\n", 3, parse.ErrSyntax},
		{"not a number", lines[0] + "\n" + lines[1] + "\n" + strings.Replace(lines[2], "3193", "31x3", 1) + "\n", 3, parse.ErrSyntax},
		{"overflow", lines[0] + "\n" + lines[1] + "\n" + strings.Replace(lines[2], "3193", "99999999999999999999", 1) + "\n", 3, parse.ErrRange},
		{"negative", lines[0] + "\n" + lines[1] + "\n" + strings.Replace(lines[2], "3193", "-3193", 1) + "\n", 3, parse.ErrNegative},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Stats
			err := parseDev([]byte(c.in), &s)
			wantParseError(t, err, "net/dev", c.line)
			if !errorsIs(err, c.err) {
				t.Fatalf("err = %v, want cause %v", err, c.err)
			}
		})
	}
	// Header only: a namespace with no interface at all is valid.
	var s Stats
	s.Interfaces = make([]Interface, 3)
	if err := parseDev([]byte(lines[0]+"\n"+lines[1]+"\n"), &s); err != nil || len(s.Interfaces) != 0 {
		t.Fatalf("header only: %v, %d interfaces", err, len(s.Interfaces))
	}
	// Old kernels glued a wide number to the colon: "eth0:123 ...".
	glued := lines[0] + "\n" + lines[1] + "\n  eth0:380348567   21683    0    0    0     0          0         0  1801618   15801    0    0    0     0       0          0\n"
	if err := parseDev([]byte(glued), &s); err != nil || s.Interfaces[0].RxBytes != known(380348567) {
		t.Fatalf("glued: %v %+v", err, s.Interfaces)
	}
}

func TestDefaultInterfaceFilter(t *testing.T) {
	for name, keep := range map[string]bool{
		"lo": false, "LO": false, "veth1234": false, "docker0": false, "nerdctl0": false,
		"eth0": true, "ens3": true, "l": true, "vet": true, "cali123": true, "": true,
	} {
		if got := DefaultInterfaceFilter(name); got != keep {
			t.Errorf("DefaultInterfaceFilter(%q) = %v, want %v", name, got, keep)
		}
	}
}

func FuzzParseDev(f *testing.F) {
	addFixtureSeeds(f, "dev")
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Stats
		err := parseDev(b, &s)
		fuzzCheck(t, err, "net/dev")
		if err == nil {
			// Every interface came from a line with a colon after the header.
			if n := strings.Count(string(b), ":"); len(s.Interfaces) > n {
				t.Fatalf("%d interfaces from %d colons", len(s.Interfaces), n)
			}
		}
	})
}

func BenchmarkParseDev(b *testing.B) {
	in := readFixture(b, "docker-host", "dev")
	var s Stats
	b.ReportAllocs()
	for b.Loop() {
		if err := parseDev(in, &s); err != nil {
			b.Fatal(err)
		}
	}
}
