package netns

import (
	"errors"
	"strings"
	"testing"
)

// pairSections returns the sections the pair files fill, for comparison.
func pairSections(s *Stats) [6]any {
	return [6]any{s.IP, s.ICMP, s.TCP, s.UDP, s.TCPExt, s.IPExt}
}

// sameResult checks that the cached and the uncached parse agree, on the
// values and on the error.
func sameResult(t *testing.T, cached, plain *Stats, errC, errP error) {
	t.Helper()
	var pc, pp *ParseError
	switch {
	case errC == nil && errP == nil:
		if pairSections(cached) != pairSections(plain) {
			t.Fatalf("cached parse differs:\n%+v\n%+v", pairSections(cached), pairSections(plain))
		}
	case errors.As(errC, &pc) && errors.As(errP, &pp):
		if pc.File != pp.File || pc.Line != pp.Line || pc.Err != pp.Err {
			t.Fatalf("cached error %v, plain error %v", errC, errP)
		}
	default:
		t.Fatalf("cached error %v, plain error %v", errC, errP)
	}
}

func TestPairCache(t *testing.T) {
	parsers := map[string]func([]byte, *Stats, *pairCache) error{"snmp": parseSNMP, "netstat": parseNetstat}
	for name, parseFile := range parsers {
		for _, d := range fixtureDirs {
			t.Run(name+"/"+d, func(t *testing.T) {
				b := readFixture(t, d, name)
				var c pairCache
				var cached, plain Stats
				if err := parseFile(b, &cached, &c); err != nil { // builds the cache
					t.Fatal(err)
				}
				pairs := strings.Count(strings.TrimSpace(string(b)), "\n")/2 + 1
				if len(c.heads) != pairs || c.s != &cached {
					t.Fatalf("cache holds %d header lines, file has %d", len(c.heads), pairs)
				}
				err := parseFile(b, &cached, &c) // uses it
				sameResult(t, &cached, &plain, err, parseFile(b, &plain, nil))
				if n := testing.AllocsPerRun(50, func() { _ = parseFile(b, &cached, &c) }); n != 0 {
					t.Fatalf("%v allocations per cached parse", n)
				}
				// Another Stats rebuilds the cache instead of writing into the
				// first one.
				var other Stats
				before := pairSections(&cached)
				if err := parseFile(b, &other, &c); err != nil || c.s != &other {
					t.Fatalf("%v; cache for %p, want %p", err, c.s, &other)
				}
				if pairSections(&cached) != before || pairSections(&other) != pairSections(&plain) {
					t.Fatal("a parse into another Stats changed the first")
				}
			})
		}
	}
	// A header that changed (keys swapped, and their values) is looked up
	// again, not read through the stale slots.
	b := string(readFixture(t, "docker-host", "snmp"))
	lines := strings.Split(b, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Tcp: RtoAlgorithm") {
			lines[i] = strings.Replace(l, "ActiveOpens PassiveOpens", "PassiveOpens ActiveOpens", 1)
			f := strings.Fields(lines[i+1])
			f[5], f[6] = f[6], f[5] // after "Tcp:", RtoAlgorithm, RtoMin, RtoMax, MaxConn
			lines[i+1] = strings.Join(f, " ")
		}
	}
	swapped := []byte(strings.Join(lines, "\n"))
	var c pairCache
	var cached, plain Stats
	if err := parseSNMP([]byte(b), &cached, &c); err != nil {
		t.Fatal(err)
	}
	err := parseSNMP(swapped, &cached, &c)
	sameResult(t, &cached, &plain, err, parseSNMP([]byte(b), &plain, nil))
	if cached.TCP.ActiveOpens == cached.TCP.PassiveOpens {
		t.Fatal("test needs distinct ActiveOpens and PassiveOpens in the capture")
	}
}

// FuzzPairCache: after a cache is warmed on a real capture, parsing any
// input through it gives what the uncached parse gives.
func FuzzPairCache(f *testing.F) {
	addFixtureSeeds(f, "snmp")
	addFixtureSeeds(f, "netstat")
	warmSNMP, warmNetstat := readFixture(f, "docker-host", "snmp"), readFixture(f, "docker-host", "netstat")
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range []struct {
			parse func([]byte, *Stats, *pairCache) error
			warm  []byte
		}{{parseSNMP, warmSNMP}, {parseNetstat, warmNetstat}} {
			var c pairCache
			var cached, plain Stats
			if err := p.parse(p.warm, &cached, &c); err != nil {
				t.Fatal(err)
			}
			errC := p.parse(b, &cached, &c)
			sameResult(t, &cached, &plain, errC, p.parse(b, &plain, nil))
			// And once more, through whatever the cache holds now.
			errC = p.parse(b, &cached, &c)
			sameResult(t, &cached, &plain, errC, p.parse(b, &plain, nil))
		}
	})
}

// BenchmarkParsePairsCached is the steady-state parse of net/snmp and
// net/netstat through a Handle's header cache (compare BenchmarkParseSNMP
// and BenchmarkParseNetstat, the first-time lookup path).
func BenchmarkParsePairsCached(b *testing.B) {
	for name, parseFile := range map[string]func([]byte, *Stats, *pairCache) error{"snmp": parseSNMP, "netstat": parseNetstat} {
		b.Run(name, func(b *testing.B) {
			in := readFixture(b, "docker-host", name)
			var c pairCache
			var s Stats
			b.ReportAllocs()
			for b.Loop() {
				if err := parseFile(in, &s, &c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
