package value_test

import (
	"encoding/json"
	"testing"

	"github.com/metricsd/metricsd/cgroup"
	"github.com/metricsd/metricsd/internal/value"
	"github.com/metricsd/metricsd/netns"
)

// TestOneType: cgroup.Value and netns.Value are one type, so a value from
// either package goes where the other's is expected.
func TestOneType(t *testing.T) {
	var c cgroup.Value = netns.Value{V: 3, State: netns.Known}
	var n netns.Value = c
	if n.State != cgroup.Known || cgroup.Unlimited != netns.Unlimited || cgroup.Unavailable != 0 {
		t.Fatalf("%+v", n)
	}
}

func TestMethods(t *testing.T) {
	for _, c := range []struct {
		v          value.Value
		n          uint64
		ok, avail  bool
		unlim      bool
		str, state string
	}{
		{value.Value{}, 0, false, false, false, "unavailable", "unavailable"},
		{value.Of(42), 42, true, true, false, "42", "known"},
		{value.Of(0), 0, true, true, false, "0", "known"},
		{value.Value{State: value.Unlimited}, 0, false, true, true, "max", "unlimited"},
	} {
		n, ok := c.v.Get()
		if n != c.n || ok != c.ok || c.v.Available() != c.avail || c.v.IsUnlimited() != c.unlim || c.v.String() != c.str || c.v.State.String() != c.state {
			t.Errorf("%+v: Get %d %v, Available %v, IsUnlimited %v, String %q, State %q", c.v, n, ok, c.v.Available(), c.v.IsUnlimited(), c.v.String(), c.v.State.String())
		}
	}
	if s := value.State(9).String(); s != "State(9)" {
		t.Errorf("State(9) = %q", s)
	}
}

// TestJSON: a Value is a JSON number (Known), null (Unavailable) or -1
// (Unlimited), never the {"V":…,"State":…} object, and reads back the same.
func TestJSON(t *testing.T) {
	type limits struct {
		Usage, Limit, Swap cgroup.Value
		Rx                 netns.Value
		Ptr                *cgroup.Value
	}
	one := value.Of(18446744073709551615)
	in := limits{Usage: value.Of(1024), Limit: value.Value{State: value.Unlimited}, Rx: value.Of(0), Ptr: &one}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"Usage":1024,"Limit":-1,"Swap":null,"Rx":0,"Ptr":18446744073709551615}`
	if string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	// Decoding into a reused struct overwrites every field, null included.
	out := limits{Swap: value.Of(7)}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Usage != in.Usage || out.Limit != in.Limit || out.Swap != (value.Value{}) || out.Rx != in.Rx || *out.Ptr != one {
		t.Fatalf("round trip: %+v, want %+v", out, in)
	}
	for _, bad := range []string{`-2`, `1.5`, `"1"`, `{"V":1,"State":1}`, `18446744073709551616`, `true`} {
		var v value.Value
		if err := json.Unmarshal([]byte(bad), &v); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", bad, v)
		}
	}
}
