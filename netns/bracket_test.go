package netns

import (
	"reflect"
	"testing"
)

// bracket checks, for each Value field of the structs lo, ref, hi (pointers
// to the same type), that lo <= ref <= hi and that all three agree on being
// known: ref was read by another reader between our lo and hi.
func bracket(t *testing.T, what string, lo, ref, hi any) {
	t.Helper()
	l, r, h := reflect.ValueOf(lo).Elem(), reflect.ValueOf(ref).Elem(), reflect.ValueOf(hi).Elem()
	known := 0
	for i := 0; i < r.NumField(); i++ {
		name := r.Type().Field(i).Name
		lv, rv, hv := l.Field(i).Interface().(Value), r.Field(i).Interface().(Value), h.Field(i).Interface().(Value)
		if lv.State != rv.State || hv.State != rv.State {
			t.Errorf("%s.%s state: ours %v/%v, kernel file %v", what, name, lv.State, hv.State, rv.State)
			continue
		}
		if rv.V < lv.V || rv.V > hv.V {
			t.Errorf("%s.%s: kernel file %d, ours %d..%d", what, name, rv.V, lv.V, hv.V)
		}
		if rv.State == Known {
			known++
		}
	}
	if known == 0 {
		t.Errorf("%s: no field known", what)
	}
}
