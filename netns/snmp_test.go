package netns

import (
	"strings"
	"testing"

	"github.com/metricsd/metricsd/internal/parse"
)

func TestParseSNMPFixtures(t *testing.T) {
	for _, d := range fixtureDirs {
		t.Run(d, func(t *testing.T) {
			b := readFixture(t, d, "snmp")
			var s Stats
			if err := parseSNMP(b, &s, nil); err != nil {
				t.Fatal(err)
			}
			ref := refPairs(t, b)
			known := checkCounters(t, "IP", &s.IP, "", ref["Ip"])
			known += checkCounters(t, "ICMP", &s.ICMP, "", ref["Icmp"])
			known += checkCounters(t, "TCP", &s.TCP, "", ref["Tcp"])
			known += checkCounters(t, "UDP", &s.UDP, "", ref["Udp"])
			if known != 20+29+14+9 {
				t.Errorf("%d fields known, want every one on Linux 6.18", known)
			}
		})
	}
	var s Stats
	if err := parseSNMP(readFixture(t, "cgroup2-host", "snmp"), &s, nil); err != nil {
		t.Fatal(err)
	}
	// "Tcp: 1 200 120000 -1 9 2 6 0 0 30 31 0 0 0 0", read by eye.
	if s.TCP.ActiveOpens != known(9) || s.TCP.AttemptFails != known(6) || s.TCP.OutSegs != known(31) || s.UDP.NoPorts != known(20) {
		t.Fatalf("TCP %+v UDP %+v", s.TCP, s.UDP)
	}
	b := readFixture(t, "docker-host", "snmp")
	if n := testing.AllocsPerRun(50, func() { _ = parseSNMP(b, &s, nil) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}

func TestParseSNMPMalformed(t *testing.T) {
	good := strings.Split(string(readFixture(t, "docker-host", "snmp")), "\n")
	cases := []struct {
		name, in string
		line     int
		err      error
	}{
		{"empty", "", 0, parse.ErrSyntax},
		{"header without values", good[0] + "\n" + good[1] + "\n" + good[2] + "\n", 3, parse.ErrSyntax},
		{"truncated values", good[0] + "\n" + good[1][:20] + "\n", 2, parse.ErrSyntax},
		{"extra value", good[0] + "\n" + good[1] + " 5\n", 2, parse.ErrSyntax},
		{"other protocol", good[0] + "\n" + good[3] + "\n", 2, parse.ErrSyntax},
		{"no colon", "Ip Forwarding\nIp 1\n", 1, parse.ErrSyntax},
		{"not a number", good[0] + "\n" + strings.Replace(good[1], " 64 ", " 6x ", 1) + "\n", 2, parse.ErrSyntax},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Stats
			err := parseSNMP([]byte(c.in), &s, nil)
			wantParseError(t, err, fileSNMP, c.line)
			if !errorsIs(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
		})
	}
	// Unknown keys and protocols are ignored, a negative value is
	// unavailable, and keys this kernel lacks stay unavailable.
	var s Stats
	in := "Tcp: ActiveOpens NewKey CurrEstab\nTcp: 3 9 -1\nFuture: A B\nFuture: 1 2\n"
	if err := parseSNMP([]byte(in), &s, nil); err != nil {
		t.Fatal(err)
	}
	if s.TCP.ActiveOpens != known(3) || s.TCP.CurrEstab.Available() || s.TCP.InSegs.Available() || s.IP.InReceives.Available() {
		t.Fatalf("%+v", s.TCP)
	}
}

func FuzzParseSNMP(f *testing.F) {
	addFixtureSeeds(f, "snmp")
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Stats
		fuzzCheck(t, parseSNMP(b, &s, nil), fileSNMP)
	})
}

func BenchmarkParseSNMP(b *testing.B) {
	in := readFixture(b, "docker-host", "snmp")
	var s Stats
	b.ReportAllocs()
	for b.Loop() {
		if err := parseSNMP(in, &s, nil); err != nil {
			b.Fatal(err)
		}
	}
}
