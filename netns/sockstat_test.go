package netns

import (
	"strings"
	"testing"

	"github.com/metricsd/metricsd/internal/parse"
)

// refSockstat is an independent reader: "PROTO key" -> value text.
func refSockstat(b []byte) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		p := strings.TrimSuffix(f[0], ":")
		for i := 1; i+1 < len(f); i += 2 {
			m[p+" "+f[i]] = f[i+1]
		}
	}
	return m
}

// sockstatKeys maps each Sockets field to its kernel protocol and key.
var sockstatKeys = map[string]string{
	"Used": "sockets used", "TCPInUse": "TCP inuse", "Host.TCPOrphan": "TCP orphan", "TCPTimeWait": "TCP tw",
	"Host.TCPAlloc": "TCP alloc", "Host.TCPMem": "TCP mem", "UDPInUse": "UDP inuse", "Host.UDPMem": "UDP mem",
	"UDPLiteInUse": "UDPLITE inuse", "RawInUse": "RAW inuse", "FragInUse": "FRAG inuse", "FragMemory": "FRAG memory",
	"TCP6InUse": "TCP6 inuse", "UDP6InUse": "UDP6 inuse", "UDPLite6InUse": "UDPLITE6 inuse", "Raw6InUse": "RAW6 inuse",
	"Frag6InUse": "FRAG6 inuse", "Frag6Memory": "FRAG6 memory",
}

func TestParseSockstatFixtures(t *testing.T) {
	for _, d := range fixtureDirs {
		t.Run(d, func(t *testing.T) {
			b4, b6 := readFixture(t, d, "sockstat"), readFixture(t, d, "sockstat6")
			var s Sockets
			if err := parseSockstat(fileSockstat, b4, &s); err != nil {
				t.Fatal(err)
			}
			if err := parseSockstat(fileSockstat6, b6, &s); err != nil {
				t.Fatal(err)
			}
			ref := refSockstat(append(append([]byte{}, b4...), b6...))
			byField := map[string]string{}
			for field, key := range sockstatKeys {
				if v, ok := ref[key]; ok {
					byField[field] = v
				}
			}
			if n := checkCounters(t, "Sockets", &s, "", byField); n != len(sockstatKeys) {
				t.Errorf("%d of %d fields known", n, len(sockstatKeys))
			}
		})
	}
	var s Sockets
	if err := parseSockstat(fileSockstat, readFixture(t, "cgroup2-host", "sockstat"), &s); err != nil {
		t.Fatal(err)
	}
	// "TCP: inuse 1 orphan 0 tw 2 alloc 1 mem 0", read by eye.
	if s.TCPInUse != known(1) || s.TCPTimeWait != known(2) || s.Used != known(8) {
		t.Fatalf("%+v", s)
	}
	// Only sockstat read: the sockstat6 fields are unavailable, not zero.
	if s.TCP6InUse.Available() {
		t.Fatal("TCP6InUse known without sockstat6")
	}
}

func TestParseSockstatMalformed(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		err      error
	}{
		{"empty", "", 0, parse.ErrSyntax},
		{"no colon", "sockets used 3\n", 1, parse.ErrSyntax},
		{"missing value", "sockets: used 3\nTCP: inuse 1 orphan\n", 2, parse.ErrSyntax},
		{"not a number", "TCP: inuse x\n", 1, parse.ErrSyntax},
		{"overflow", "TCP: inuse 18446744073709551616\n", 1, parse.ErrRange},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Sockets
			err := parseSockstat(fileSockstat, []byte(c.in), &s)
			wantParseError(t, err, fileSockstat, c.line)
			if !errorsIs(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
		})
	}
	// Unknown protocol and key are ignored; a negative count is unavailable.
	var s Sockets
	if err := parseSockstat(fileSockstat, []byte("NEWPROTO: inuse 4\nTCP: inuse -1 newkey 7 tw 3\n"), &s); err != nil {
		t.Fatal(err)
	}
	if s.TCPInUse.Available() || s.TCPTimeWait != known(3) {
		t.Fatalf("%+v", s)
	}
}

func FuzzParseSockstat(f *testing.F) {
	addFixtureSeeds(f, "sockstat")
	addFixtureSeeds(f, "sockstat6")
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sockets
		fuzzCheck(t, parseSockstat(fileSockstat, b, &s), fileSockstat)
	})
}

func BenchmarkParseSockstat(b *testing.B) {
	in, in6 := readFixture(b, "docker-host", "sockstat"), readFixture(b, "docker-host", "sockstat6")
	var s Sockets
	b.ReportAllocs()
	for b.Loop() {
		if err := parseSockstat(fileSockstat, in, &s); err != nil {
			b.Fatal(err)
		}
		if err := parseSockstat(fileSockstat6, in6, &s); err != nil {
			b.Fatal(err)
		}
	}
}
