package stdout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/metricsd/metricsd/internal/sinktest"
	"github.com/metricsd/metricsd/sink"
	"github.com/metricsd/metricsd/sink/stdout"
)

var t0 = time.Date(2026, 11, 28, 7, 0, 0, 5, time.UTC)

type jsonPoint struct {
	Name   string                     `json:"name"`
	Time   time.Time                  `json:"time"`
	Tags   map[string]string          `json:"tags"`
	Fields map[string]json.RawMessage `json:"fields"`
}

func write(t *testing.T, f stdout.Format, snap *sink.Snapshot) string {
	t.Helper()
	var b bytes.Buffer
	s, err := stdout.New(&b, stdout.WithFormat(f))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestJSONMatchesLineProtocol writes a full snapshot both ways: every JSON
// line is valid JSON with the documented keys, and carries exactly the
// measurement, tags, fields and time of the line protocol line.
func TestJSONMatchesLineProtocol(t *testing.T) {
	snap := sinktest.FullSnapshot(3, 4, t0)
	lp := strings.Split(strings.TrimSuffix(write(t, stdout.LineProtocol, snap), "\n"), "\n")
	js := strings.Split(strings.TrimSuffix(write(t, stdout.JSONLines, snap), "\n"), "\n")
	if len(lp) != len(js) || len(lp) < 3*15 {
		t.Fatalf("%d line protocol lines, %d JSON lines", len(lp), len(js))
	}
	for i := range lp {
		var jp jsonPoint
		dec := json.NewDecoder(strings.NewReader(js[i]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&jp); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, js[i])
		}
		if !strings.HasPrefix(js[i], `{"name":`) {
			t.Errorf("line %d: keys out of the documented order: %s", i, js[i])
		}
		d := lineprotocol.NewDecoderWithBytes([]byte(lp[i]))
		d.Next()
		m, _ := d.Measurement()
		if string(m) != jp.Name {
			t.Errorf("line %d: measurement %s vs %s", i, m, jp.Name)
		}
		tags := map[string]string{}
		for {
			k, v, err := d.NextTag()
			if err != nil || k == nil {
				break
			}
			tags[string(k)] = string(v)
		}
		if fmt.Sprint(tags) != fmt.Sprint(jp.Tags) {
			t.Errorf("line %d: tags %v vs %v", i, tags, jp.Tags)
		}
		n := 0
		for {
			k, v, err := d.NextField()
			if err != nil {
				t.Fatal(err)
			}
			if k == nil {
				break
			}
			n++
			want := v.String()
			if v.Kind() == lineprotocol.Int {
				want = fmt.Sprint(v.IntV())
			}
			if got := string(jp.Fields[string(k)]); got != want {
				t.Errorf("line %d %s: field %s = %s in JSON, %s in line protocol", i, m, k, got, want)
			}
		}
		if n != len(jp.Fields) {
			t.Errorf("line %d: %d fields vs %d", i, n, len(jp.Fields))
		}
		ts, _ := d.Time(lineprotocol.Nanosecond, time.Time{})
		if !ts.Equal(jp.Time) || !jp.Time.Equal(t0) {
			t.Errorf("line %d: time %v vs %v", i, ts, jp.Time)
		}
	}
}

// TestAwkwardTagValues: quotes, backslashes, commas and spaces come out as
// valid JSON, invalid UTF-8 and control characters as U+FFFD; a newline in
// a tag value, which line protocol can not carry (it made the container's
// points left out, and the write fail), becomes U+FFFD there too, every
// point written and the change counted.
func TestAwkwardTagValues(t *testing.T) {
	snap := sinktest.FullSnapshot(2, 1, t0)
	snap.Containers[0].Container.Name = "we\"ird\\ na,me=\xff\x01"
	var b bytes.Buffer
	s, _ := stdout.New(&b, stdout.WithFormat(stdout.JSONLines))
	if err := s.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(b.String(), "\n", 2)[0]
	var jp jsonPoint
	if err := json.Unmarshal([]byte(first), &jp); err != nil {
		t.Fatalf("%v: %s", err, first)
	}
	if want := "we\"ird\\ na,me=\ufffd"; jp.Tags["name"] != want {
		t.Errorf("name %q, want %q", jp.Tags["name"], want)
	}

	// Line protocol escapes what it can.
	b.Reset()
	snap.Containers[0].Container.Name = `a b,c=d"e`
	s, _ = stdout.New(&b)
	if err := s.Write(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `,name=a\ b\,c\=d"e,`) {
		t.Errorf("escaping: %.300s", b.String())
	}

	b.Reset()
	snap.Containers[0].Container.Name = "two\nlines"
	all := len(strings.Split(write(t, stdout.LineProtocol, sinktest.FullSnapshot(1, 1, t0)), "\n")) - 1
	if err := s.Write(context.Background(), snap); err != nil {
		t.Fatalf("Write = %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2*all {
		t.Fatalf("%d lines written, want the %d of both containers", len(lines), 2*all)
	}
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "name=two\uFFFDlines,") {
			n++
		}
	}
	if n != all {
		t.Errorf("%d lines with the sanitised name, want %d", n, all)
	}
	if got := s.Sanitized(); got.Replaced != 1 { // "two\nlines"
		t.Errorf("Sanitized = %+v, want 1 replaced", got)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriterErrorAndClose(t *testing.T) {
	s, _ := stdout.New(failWriter{})
	ctx := context.Background()
	if err := s.Write(ctx, sinktest.FullSnapshot(1, 1, t0)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Write = %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, sinktest.FullSnapshot(1, 1, t0)); !errors.Is(err, stdout.ErrClosed) {
		t.Fatalf("Write after Close = %v", err)
	}
	if _, err := stdout.New(failWriter{}, stdout.WithFormat(7)); err == nil {
		t.Error("unknown format accepted")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s, _ = stdout.New(failWriter{})
	if err := s.Write(cctx, sinktest.FullSnapshot(1, 1, t0)); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context = %v", err)
	}
}

type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

// TestConcurrentWrites: snapshots written from several goroutines each go
// out in one Write call, whole.
func TestConcurrentWrites(t *testing.T) {
	var out syncBuffer
	s, _ := stdout.New(&out, stdout.WithFormat(stdout.JSONLines))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap := sinktest.FullSnapshot(2, 2, t0.Add(time.Duration(g)*time.Second))
			for range 10 {
				if err := s.Write(context.Background(), snap); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	per := len(strings.Split(write(t, stdout.JSONLines, sinktest.FullSnapshot(2, 2, t0)), "\n")) - 1
	lines := strings.Split(strings.TrimSuffix(out.b.String(), "\n"), "\n")
	if out.writes != 40 || len(lines) != 40*per {
		t.Fatalf("%d writes, %d lines; want 40 and %d", out.writes, len(lines), 40*per)
	}
	for i := 0; i < len(lines); i += per {
		var first jsonPoint
		json.Unmarshal([]byte(lines[i]), &first)
		for _, l := range lines[i : i+per] {
			var jp jsonPoint
			if err := json.Unmarshal([]byte(l), &jp); err != nil || !jp.Time.Equal(first.Time) {
				t.Fatalf("snapshots interleaved at line %d: %s", i, l)
			}
		}
	}
}

// TestWriteEvent: an OOM kill event is one container_oom_kill point at the
// event's time, in either format, written whole between snapshots' points
// when both come at once.
func TestWriteEvent(t *testing.T) {
	ev := &sink.Event{Kind: sink.EventOOMKill, Time: t0.Add(time.Second), Container: sinktest.Container("c", 0), Count: 2, Total: 5}
	for _, f := range []stdout.Format{stdout.LineProtocol, stdout.JSONLines} {
		var b syncBuffer
		s, err := stdout.New(&b, stdout.WithFormat(f))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Go(func() {
				if err := s.WriteEvent(context.Background(), ev); err != nil {
					t.Error(err)
				}
			})
			wg.Go(func() {
				if err := s.Write(context.Background(), sinktest.FullSnapshot(1, 1, t0.Add(time.Duration(i)*time.Second))); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var events []string
		for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
			if strings.Contains(l, "container_oom_kill") {
				events = append(events, l)
			}
		}
		if len(events) != 20 {
			t.Fatalf("format %v: %d event lines, want 20", f, len(events))
		}
		want := "container_oom_kill,id=" + ev.Container.ID + ",image=registry.example/app:1.2,name=c-0,runtime=docker kills=2i,kills_total=5i " + fmt.Sprint(ev.Time.UnixNano())
		if f == stdout.JSONLines {
			want = `{"name":"container_oom_kill","time":"2026-11-28T07:00:01.000000005Z","tags":{"id":"` + ev.Container.ID + `","image":"registry.example/app:1.2","name":"c-0","runtime":"docker"},"fields":{"kills":2,"kills_total":5}}`
		}
		if events[0] != want {
			t.Errorf("format %v:\n got %s\nwant %s", f, events[0], want)
		}
		s.Close(context.Background())
		if err := s.WriteEvent(context.Background(), ev); !errors.Is(err, stdout.ErrClosed) {
			t.Errorf("WriteEvent after Close: %v", err)
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
