package connlimit_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metricsd/metricsd/internal/connlimit"
)

// serve runs an http.Server with h on a capped loopback listener until the
// test ends.
func serve(t *testing.T, h http.Handler, max int, opts ...connlimit.Option) (*connlimit.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := connlimit.New(ln, max, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l, ln.Addr().String()
}

// waitFor polls cond until it holds, failing after a generous bound (an
// event that does not come, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 20 s", what)
		}
	}
}

func TestCap(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	var rejects atomic.Int32
	l, addr := serve(t, ok, 2, connlimit.WithOnReject(func() { rejects.Add(1) }),
		connlimit.WithAnswer("application/json", `{"message":"busy"}`))

	// Two idle connections take both slots.
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitFor(t, "2 open connections", func() bool { return l.Open() == 2 })

	// The third is answered 503 with the given body, and counted.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("over the cap: %v; want a 503 answer", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != `{"message":"busy"}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("over the cap: %s %q %v", resp.Status, body, resp.Header)
	}
	if l.Rejected() != 1 || rejects.Load() != 1 || l.Open() != 2 {
		t.Errorf("Rejected %d, OnReject called %d times, Open %d; want 1, 1, 2", l.Rejected(), rejects.Load(), l.Open())
	}

	// A held connection closes: its slot is free again.
	held[0].Close()
	waitFor(t, "a free slot", func() bool { return l.Open() == 1 })
	resp, err = client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		t.Errorf("under the cap again: %s %q", resp.Status, body)
	}
	waitFor(t, "the request's connection closed", func() bool { return l.Open() == 1 })
}

// TestHijackedCounts: a hijacked connection keeps its slot until the
// handler closes it.
func TestHijackedCounts(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		<-release
		c.Close()
	})
	l, addr := serve(t, h, 1)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /attach HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "101") {
		t.Fatalf("upgrade: %q %v", line, err)
	}
	if l.Open() != 1 {
		t.Errorf("Open %d with a hijacked connection, want 1", l.Open())
	}
	close(release)
	waitFor(t, "the hijacked connection's slot back", func() bool { return l.Open() == 0 })
}

// TestWriteTimeout: a client that stops reading a stream has its
// connection's write fail after the timeout; a stream that keeps moving
// is not cut.
func TestWriteTimeout(t *testing.T) {
	werr := make(chan error, 1)
	chunk := strings.Repeat("x", 64<<10)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := 0; ; i++ {
			if r.URL.Path == "/slow" && i == 40 {
				werr <- nil
				return
			}
			if r.URL.Path == "/slow" {
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := io.WriteString(w, chunk); err != nil {
				werr <- err
				return
			}
			if err := rc.Flush(); err != nil {
				werr <- err
				return
			}
		}
	})
	var stalls atomic.Int32
	l, addr := serve(t, h, 4, connlimit.WithWriteTimeout(300*time.Millisecond), connlimit.WithOnStall(func() { stalls.Add(1) }))

	// A stream read as it comes lasts longer than the timeout (40 chunks
	// 10 ms apart) and ends whole.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 40*int64(len(chunk)) || <-werr != nil {
		t.Fatalf("a moving stream: %d bytes, %v; want %d", n, err, 40*len(chunk))
	}

	// A client that reads the headers and then nothing.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-werr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("the handler's write failed with %v, want a timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a write to a client that does not read still blocks after 30 s")
	}
	if l.Stalled() != 1 || stalls.Load() != 1 {
		t.Errorf("Stalled %d, OnStall called %d times; want 1", l.Stalled(), stalls.Load())
	}
	waitFor(t, "the stalled connection closed", func() bool { return l.Open() == 0 })
}

func TestBadOptions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := connlimit.New(ln, 0); err == nil {
		t.Error("a cap of 0 accepted")
	}
	if _, err := connlimit.New(ln, 1, connlimit.WithWriteTimeout(-time.Second)); err == nil {
		t.Error("a negative write timeout accepted")
	}
}

func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	capped, err := connlimit.New(ln, 1, connlimit.WithWriteTimeout(time.Minute))
	if err != nil {
		panic(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
	go srv.Serve(capped)
	defer srv.Close()

	idle, _ := net.Dial("tcp", ln.Addr().String()) // takes the one slot
	defer idle.Close()
	for capped.Open() == 0 {
		time.Sleep(time.Millisecond)
	}
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status)
	// Output: 503 Service Unavailable
}
