package netns

import (
	"strings"
	"testing"
)

func TestParseNetstatFixtures(t *testing.T) {
	for _, d := range fixtureDirs {
		t.Run(d, func(t *testing.T) {
			b := readFixture(t, d, "netstat")
			var s Stats
			if err := parseNetstat(b, &s, nil); err != nil {
				t.Fatal(err)
			}
			ref := refPairs(t, b)
			known := checkCounters(t, "TCPExt", &s.TCPExt, "", ref["TcpExt"])
			known += checkCounters(t, "IPExt", &s.IPExt, "", ref["IpExt"])
			if known != 57+18 {
				t.Errorf("%d fields known, want every one on Linux 6.18", known)
			}
		})
	}
	var s Stats
	b := readFixture(t, "docker-host", "netstat")
	if err := parseNetstat(b, &s, nil); err != nil {
		t.Fatal(err)
	}
	if s.IPExt.InOctets.V == 0 {
		t.Fatal("host IpExt InOctets is zero")
	}
	if n := testing.AllocsPerRun(50, func() { _ = parseNetstat(b, &s, nil) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
	// A truncated capture (cut inside the TcpExt values) is a ParseError on
	// line 2, never a panic.
	cut := b[:strings.Index(string(b), "\nIpExt")-10]
	wantParseError(t, parseNetstat(cut, &s, nil), fileNetstat, 2)
}

func FuzzParseNetstat(f *testing.F) {
	addFixtureSeeds(f, "netstat")
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Stats
		fuzzCheck(t, parseNetstat(b, &s, nil), fileNetstat)
	})
}

func BenchmarkParseNetstat(b *testing.B) {
	in := readFixture(b, "docker-host", "netstat")
	var s Stats
	b.ReportAllocs()
	for b.Loop() {
		if err := parseNetstat(in, &s, nil); err != nil {
			b.Fatal(err)
		}
	}
}
