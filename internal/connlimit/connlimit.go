// Package connlimit bounds what a server's clients can hold: how many
// connections are open at once, and how long a write to one may stall.
// It goes beneath an http.Server, whose own timeouts (ReadHeaderTimeout,
// IdleTimeout, ReadTimeout, WriteTimeout) bound the rest:
//
//	ln, err := net.Listen("tcp", "127.0.0.1:9338")
//	...
//	capped, err := connlimit.New(ln, 256,
//		connlimit.WithWriteTimeout(time.Minute),
//		connlimit.WithOnReject(func() { log.Warn("connection cap reached") }))
//	...
//	srv.Serve(capped)
//
// A connection accepted beyond the cap is answered "503 Service
// Unavailable" and closed: the client learns why at once, instead of
// waiting in the kernel's accept queue.
package connlimit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Listener is a net.Listener that serves at most a fixed number of
// connections at once. A connection counts from Accept until its Close,
// so one an http.Server hands to a handler by Hijack counts until the
// handler closes it.
type Listener struct {
	net.Listener
	slots        chan struct{} // one token per open connection
	answering    chan struct{} // bounds the goroutines answering refused connections
	writeTimeout time.Duration
	onReject     func()
	onStall      func()
	answer       []byte
	rejected     atomic.Uint64
	stalled      atomic.Uint64
}

// Option configures a Listener; it returns an error for a value it
// refuses.
type Option func(*Listener) error

// WithWriteTimeout makes each write to a connection fail when it cannot
// complete within d (the client stopped reading). The connection is then
// unusable; http.Server closes it. It bounds a stall, not a response: a
// stream that keeps moving lasts as long as it moves. 0 (the default)
// means no bound.
func WithWriteTimeout(d time.Duration) Option {
	return func(l *Listener) error {
		if d < 0 {
			return fmt.Errorf("connlimit: negative write timeout %v", d)
		}
		l.writeTimeout = d
		return nil
	}
}

// WithOnReject calls f for each connection refused over the cap (to log
// or count it). f must not block.
func WithOnReject(f func()) Option {
	return func(l *Listener) error { l.onReject = f; return nil }
}

// WithOnStall calls f for each connection whose write outlasted the write
// timeout. f must not block.
func WithOnStall(f func()) Option {
	return func(l *Listener) error { l.onStall = f; return nil }
}

// WithAnswer sets the body (and its Content-Type) of the 503 a refused
// connection gets. The default is "too many connections\n" as text/plain.
func WithAnswer(contentType, body string) Option {
	return func(l *Listener) error {
		l.answer = response(contentType, body)
		return nil
	}
}

func response(contentType, body string) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		contentType, len(body), body)
}

// answerers bounds the goroutines that answer refused connections at once;
// beyond it a refused connection is closed without an answer.
const answerers = 32

// answerTimeout bounds answering one refused connection.
const answerTimeout = time.Second

// New wraps ln so that at most max connections are open at once.
func New(ln net.Listener, max int, opts ...Option) (*Listener, error) {
	if max <= 0 {
		return nil, fmt.Errorf("connlimit: the cap must be positive, got %d", max)
	}
	l := &Listener{
		Listener:  ln,
		slots:     make(chan struct{}, max),
		answering: make(chan struct{}, answerers),
		answer:    response("text/plain; charset=utf-8", "too many connections\n"),
	}
	var errs []error
	for _, o := range opts {
		if err := o(l); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l, nil
}

// Accept returns the next connection under the cap. Connections over it
// are answered and closed here, and Accept waits for the next one.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &conn{Conn: c, l: l}, nil
		default:
			l.refuse(c)
		}
	}
}

// Open is the number of connections open now.
func (l *Listener) Open() int { return len(l.slots) }

// Rejected is the number of connections refused over the cap so far.
func (l *Listener) Rejected() uint64 { return l.rejected.Load() }

// Stalled is the number of connections whose write outlasted the write
// timeout so far.
func (l *Listener) Stalled() uint64 { return l.stalled.Load() }

// refuse answers 503 and closes c, in a goroutine so that Accept goes on.
func (l *Listener) refuse(c net.Conn) {
	l.rejected.Add(1)
	if l.onReject != nil {
		l.onReject()
	}
	select {
	case l.answering <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.answering }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(answerTimeout))
		// Read the request's head first: a client that gets an answer
		// before it sent its request takes it for a broken connection.
		readHead(c)
		if _, err := c.Write(l.answer); err != nil {
			return
		}
		// Half close, then take what the client sent until it closes: a
		// close with its request unread would reset the connection, and
		// the client might lose the answer.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// readHead reads from c until the end of an HTTP request head (an empty
// line), at most 16 KiB, or until the deadline set on c.
func readHead(c net.Conn) {
	var buf [16 << 10]byte
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if bytes.Contains(buf[:n], []byte("\r\n\r\n")) || err != nil {
			return
		}
	}
}

// conn gives its slot back on Close and bounds each write.
type conn struct {
	net.Conn
	l       *Listener
	closed  sync.Once
	stalled atomic.Bool
}

func (c *conn) Write(b []byte) (int, error) {
	if d := c.l.writeTimeout; d > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(d)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Write(b)
	var ne net.Error
	if err != nil && c.l.writeTimeout > 0 && errors.As(err, &ne) && ne.Timeout() && c.stalled.CompareAndSwap(false, true) {
		c.l.stalled.Add(1)
		if c.l.onStall != nil {
			c.l.onStall()
		}
	}
	return n, err
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { <-c.l.slots })
	return err
}

// CloseWrite half-closes the connection (httputil.ReverseProxy does so on
// an upgraded connection when the other side ends its stream).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// CloseRead half-closes the reading side.
func (c *conn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return errors.ErrUnsupported
}
