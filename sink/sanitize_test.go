package sink_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/metricsd/metricsd/netns"
	"github.com/metricsd/metricsd/sink"
)

func TestSanitizerValue(t *testing.T) {
	for _, c := range []struct {
		in        string
		max       int
		lp        bool
		want      string
		rep, trun bool
	}{
		{"plain", 100, false, "plain", false, false},
		{"a\xffb", 100, false, "a\uFFFDb", true, false},
		{"a\xff\xfe\xfdb", 100, false, "a\uFFFDb", true, false}, // one run, one U+FFFD, as strings.ToValidUTF8
		{"\xc3", 100, false, "\uFFFD", true, false},
		{"two\nlines\t\x00\x7f", 100, false, "two\uFFFDlines\uFFFD", true, false},
		{"x\\", 100, false, "x\\", false, false},
		{"x\\", 100, true, "x\uFFFD", true, false},
		{"x\\\\", 100, true, "x\\\uFFFD", true, false},
		{"abcdef", 4, false, "abcd", false, true},
		{"abé", 3, false, "ab", false, true}, // é does not fit
		{"a\xff", 3, false, "a", true, true}, // nor does U+FFFD (3 bytes)
		{"ab\\c", 3, true, "ab", true, true}, // cut to "ab\", whose backslash has no room for U+FFFD
		{strings.Repeat("é", 9000), -1, false, strings.Repeat("é", 9000), false, false},
		{"", 5, true, "", false, false},
	} {
		l := sink.Limits{MaxValueLen: c.max}
		z := sink.NewSanitizer(l)
		if c.lp {
			z = sink.NewLineProtocolSanitizer(l)
		}
		if got := z.Value(c.in); got != c.want {
			t.Errorf("Value(%q, max %d, lp %v) = %q, want %q", c.in, c.max, c.lp, got, c.want)
		}
		if got := string(z.AppendValue([]byte("x"), c.in)[1:]); got != c.want {
			t.Errorf("AppendValue(%q) = %q, want %q", c.in, got, c.want)
		}
		want := sink.Sanitized{}
		if c.rep {
			want.Replaced = 2
		}
		if c.trun {
			want.Truncated = 2
		}
		if got := z.Sanitized(); got != want {
			t.Errorf("%q: counted %+v, want %+v", c.in, got, want)
		}
	}
}

// TestSanitizerInterfaces: the filter first, then the bound, in order; a
// name that becomes another's is left out; both counted.
func TestSanitizerInterfaces(t *testing.T) {
	var ifs []netns.Interface
	for _, n := range []string{"lo", "eth0", "u\xff\xfe", "veth1", "u\xfe", "u\uFFFD", "x\\", "eth1"} {
		ifs = append(ifs, netns.Interface{Name: n})
	}
	noVeth := func(n string) bool { return !strings.HasPrefix(n, "veth") }
	z := sink.NewLineProtocolSanitizer(sink.Limits{MaxInterfaces: 5})
	got := z.Interfaces(nil, ifs, noVeth)
	var s []string
	for _, k := range got {
		s = append(s, ifs[k.Index].Name+"="+k.Name)
	}
	want := "lo=lo eth0=eth0 u\xff\xfe=u\uFFFD x\\=x\uFFFD eth1=eth1"
	if strings.Join(s, " ") != want {
		t.Errorf("kept %q, want %q", strings.Join(s, " "), want)
	}
	if c := z.Sanitized(); c.Interfaces != 2 || c.Replaced != 3 {
		t.Errorf("counted %+v, want 2 interfaces left out (u\\xfe, u\\uFFFD), 3 replaced", c)
	}
	if got := z.Interfaces(nil, ifs[:2], nil); len(got) != 2 || z.Sanitized().Interfaces != 2 {
		t.Errorf("plain interfaces: %v, %+v", got, z.Sanitized())
	}
	z = sink.NewSanitizer(sink.Limits{MaxInterfaces: 2})
	if got := z.Interfaces(nil, ifs, nil); len(got) != 2 || z.Sanitized().Interfaces != uint64(len(ifs)-2) {
		t.Errorf("bound 2: %v, %+v", got, z.Sanitized())
	}
}

// TestGlobalTagValuesChecked: a global tag value with a control character
// or invalid UTF-8 is refused where it is given.
func TestGlobalTagValuesChecked(t *testing.T) {
	for _, v := range []string{"a\nb", "a\xff"} {
		if _, err := sink.NewTagger(sink.Tags{Global: []sink.Tag{{Key: "env", Value: v}}}); err == nil {
			t.Errorf("global tag value %q accepted", v)
		}
	}
}

// FuzzSanitizer: whatever the input, the output is valid UTF-8 without
// control characters, at most MaxValueLen bytes, without a trailing
// backslash for line protocol, and the input itself when that was all of
// those.
func FuzzSanitizer(f *testing.F) {
	f.Add("bad\xffname\xc3", 10, true)
	f.Add(strings.Repeat("é", 20), 7, false)
	f.Add("x\\\\\\", 4, true)
	f.Fuzz(func(t *testing.T, s string, max int, lp bool) {
		if max < 1 || max > 1<<16 {
			return
		}
		l := sink.Limits{MaxValueLen: max}
		z := sink.NewSanitizer(l)
		if lp {
			z = sink.NewLineProtocolSanitizer(l)
		}
		out := z.Value(s)
		bad := !utf8.ValidString(out) || len(out) > max || strings.ContainsFunc(out, func(r rune) bool { return r < 0x20 || r == 0x7f })
		if bad || lp && strings.HasSuffix(out, "\\") {
			t.Fatalf("Value(%q, %d, %v) = %q", s, max, lp, out)
		}
		if !z.Clean(out) {
			t.Fatalf("Value(%q) = %q is not clean", s, out)
		}
		if z.Clean(s) != (out == s && z.Sanitized() == sink.Sanitized{}) {
			t.Fatalf("Clean(%q) = %v, Value = %q, counted %+v", s, z.Clean(s), out, z.Sanitized())
		}
	})
}
