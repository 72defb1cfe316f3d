package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute) // Info and above
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	for range 5 {
		l.Warn("host", "refused", "host", "evil.example")
	}
	if !l.Warn("origin", "refused an Origin") { // another cause is not held back
		t.Error("the first line of a second cause was held back")
	}
	if l.Log(t.Context(), slog.LevelDebug, "debug", "below the level") {
		t.Error("a line below the handler's level was written")
	}
	now = now.Add(59 * time.Second)
	if l.Warn("host", "refused") {
		t.Error("written within the interval")
	}
	now = now.Add(time.Second)
	if !l.Error("host", "refused", "host", "again.example") {
		t.Error("not written after the interval")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		`level=WARN msg=refused host=evil.example`,
		`level=WARN msg="refused an Origin"`,
		`level=ERROR msg=refused host=again.example held_back=5`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q, want %q", i, lines[i], want)
		}
	}
	if strings.Contains(lines[0], "held_back") {
		t.Errorf("first line %q says some were held back", lines[0])
	}
}

func TestCallerArgsUntouched(t *testing.T) {
	l := New(slog.New(slog.DiscardHandler), time.Nanosecond)
	now := time.Unix(0, 0)
	l.now = func() time.Time { return now }
	args := make([]any, 2, 4)
	args[0], args[1] = "k", "v"
	l.Warn("c", "m", args...)
	l.Warn("c", "m", args...) // held back
	now = now.Add(time.Second)
	l.Warn("c", "m", args...) // held_back appended
	if full := args[:cap(args)]; full[2] != nil {
		t.Errorf("Log appended into the caller's slice: %v", full)
	}
}

func TestNil(t *testing.T) {
	var l *Logger
	if l.Warn("c", "m") {
		t.Error("a nil Logger wrote")
	}
	if New(nil, 0).Warn("c", "m") {
		t.Error("a Logger of a nil *slog.Logger reported a write")
	}
}
