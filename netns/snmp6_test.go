package netns

import (
	"strings"
	"testing"

	"github.com/metricsd/metricsd/internal/parse"
)

func refSNMP6(b []byte) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		m[f[0]] = f[1]
	}
	return m
}

func TestParseSNMP6Fixtures(t *testing.T) {
	for _, d := range fixtureDirs {
		t.Run(d, func(t *testing.T) {
			b := readFixture(t, d, "snmp6")
			var s Stats
			if err := parseSNMP6(b, &s); err != nil {
				t.Fatal(err)
			}
			ref := refSNMP6(b)
			known := checkCounters(t, "IP6", &s.IP6, "Ip6", ref)
			known += checkCounters(t, "ICMP6", &s.ICMP6, "Icmp6", ref)
			known += checkCounters(t, "UDP6", &s.UDP6, "Udp6", ref)
			if known != 33+36+9 {
				t.Errorf("%d fields known, want every one on Linux 6.18", known)
			}
		})
	}
	var s Stats
	b := readFixture(t, "cgroup2-host", "snmp6")
	if err := parseSNMP6(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.IP6.InReceives != known(1) { // "Ip6InReceives 1", read by eye
		t.Fatalf("%+v", s.IP6.InReceives)
	}
	if n := testing.AllocsPerRun(50, func() { _ = parseSNMP6(b, &s) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}

func TestParseSNMP6Malformed(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		err      error
	}{
		{"empty", "", 0, parse.ErrSyntax},
		{"key only", "Ip6InReceives 1\nIp6InHdrErrors\n", 2, parse.ErrSyntax},
		{"three fields", "Ip6InReceives 1 2\n", 1, parse.ErrSyntax},
		{"not a number", "Udp6NoPorts 1e3\n", 1, parse.ErrSyntax},
		{"overflow", "Icmp6InMsgs 99999999999999999999\n", 1, parse.ErrRange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Stats
			err := parseSNMP6([]byte(c.in), &s)
			wantParseError(t, err, fileSNMP6, c.line)
			if !errorsIs(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
		})
	}
	var s Stats
	if err := parseSNMP6([]byte("Icmp6InType133 4\nIp6Future 5\nUdp6NoPorts 7\n"), &s); err != nil {
		t.Fatal(err)
	}
	if s.UDP6.NoPorts != known(7) || s.IP6.InReceives.Available() {
		t.Fatalf("%+v", s.UDP6)
	}
}

func FuzzParseSNMP6(f *testing.F) {
	addFixtureSeeds(f, "snmp6")
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Stats
		fuzzCheck(t, parseSNMP6(b, &s), fileSNMP6)
	})
}

func BenchmarkParseSNMP6(b *testing.B) {
	in := readFixture(b, "docker-host", "snmp6")
	var s Stats
	b.ReportAllocs()
	for b.Loop() {
		if err := parseSNMP6(in, &s); err != nil {
			b.Fatal(err)
		}
	}
}
