package netns

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The fixture directories: real captures, see testdata/README.md.
var fixtureDirs = []string{"docker-host", "docker-container", "cgroup2-host"}

func readFixture(t testing.TB, dir, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refPairs is an independent, simple reader of the header/value line pairs
// of net/snmp and net/netstat: proto -> key -> value text.
func refPairs(t testing.TB, b []byte) map[string]map[string]string {
	t.Helper()
	m := map[string]map[string]string{}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines)%2 != 0 {
		t.Fatalf("odd number of lines")
	}
	for i := 0; i < len(lines); i += 2 {
		k := strings.Fields(lines[i])
		v := strings.Fields(lines[i+1])
		if len(k) != len(v) || k[0] != v[0] {
			t.Fatalf("line %d: header and values do not match", i+1)
		}
		p := strings.TrimSuffix(k[0], ":")
		m[p] = map[string]string{}
		for j := 1; j < len(k); j++ {
			m[p][k[j]] = v[j]
		}
	}
	return m
}

// checkCounters compares every Value field of the struct v (a pointer) with
// ref, where the kernel key is prefix+field name. Fields absent from ref
// must be unavailable; present ones must equal the text parsed by strconv.
// It returns how many fields were known.
func checkCounters(t *testing.T, what string, v any, prefix string, ref map[string]string) int {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	known := 0
	for i := 0; i < rv.NumField(); i++ {
		name := rv.Type().Field(i).Name
		if f := rv.Field(i); f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(Value{}) {
			known += checkCounters(t, what+"."+name, f.Addr().Interface(), prefix+name+".", ref)
			continue
		}
		got := rv.Field(i).Interface().(Value)
		txt, ok := ref[prefix+name]
		if !ok {
			if got.Available() {
				t.Errorf("%s.%s = %v, want unavailable (key absent)", what, name, got)
			}
			continue
		}
		want, err := strconv.ParseUint(txt, 10, 64)
		if err != nil { // negative: must be unavailable
			if got.Available() {
				t.Errorf("%s.%s = %v, want unavailable for %q", what, name, got, txt)
			}
			continue
		}
		if got != (Value{V: want, State: Known}) {
			t.Errorf("%s.%s = %v, want %d", what, name, got, want)
		}
		known++
	}
	return known
}

// wantParseError checks that err is a *ParseError for file at line (line <
// 0: any line) whose cause is one of the parse sentinels.
func wantParseError(t *testing.T, err error, file string, line int) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *ParseError", err)
	}
	if pe.File != file || (line >= 0 && pe.Line != line) {
		t.Fatalf("ParseError at %s line %d, want %s line %d (%v)", pe.File, pe.Line, file, line, err)
	}
	if pe.Err == nil || errors.Unwrap(err) != pe.Err {
		t.Fatalf("ParseError.Err = %v, Unwrap mismatch", pe.Err)
	}
}

// fuzzCheck is the property every fuzzed parser must hold: no panic, and an
// error is a *ParseError naming file.
func fuzzCheck(t *testing.T, err error, file string) {
	t.Helper()
	if err == nil {
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != file || pe.Err == nil || pe.Line < 0 {
		t.Fatalf("err = %#v, want *ParseError for %s", err, file)
	}
}

func addFixtureSeeds(f *testing.F, name string) {
	for _, d := range fixtureDirs {
		b := readFixture(f, d, name)
		f.Add(b)
		f.Add(b[:len(b)/2]) // truncated mid-line
	}
	f.Add([]byte{})
	f.Add([]byte("\n"))
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
