package stdout

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzJSONString: whatever the string, appendJSONString writes one valid
// JSON string that decodes to the input with invalid UTF-8 bytes replaced
// by U+FFFD.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"u\o`, "tab\tnl\n", "\x00\x1f\x7f", "é€😀", "\xff\xfe", "a\xc3", "</script>", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString([]byte("x"), s)
		if b[0] != 'x' {
			t.Fatal("prefix overwritten")
		}
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b[1:], err)
		}
		if want := strings.ToValidUTF8(s, "\uFFFD"); got != want && !sameReplaced(s, got) {
			t.Fatalf("%q -> %s -> %q, want %q", s, b[1:], got, want)
		}
	})
}

// sameReplaced accepts one U+FFFD per invalid byte (strings.ToValidUTF8
// folds a run of them into one).
func sameReplaced(in, got string) bool {
	var b strings.Builder
	for i := 0; i < len(in); {
		r, n := utf8.DecodeRuneInString(in[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(in[i : i+n])
		}
		i += n
	}
	return b.String() == got
}
