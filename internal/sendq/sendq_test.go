package sendq

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestLinger: with Linger the sender waits for the interval or half the
// buffer's snapshots, though a batch is full; without it a full batch is
// sent at once. Each case appends snapshots of 3 one-point records with a
// batch of 2 and an interval of an hour.
func TestLinger(t *testing.T) {
	for _, tc := range []struct {
		linger bool
		// posts is the requests after each Append, once the sender is idle.
		posts []int
	}{
		{false, []int{2, 4, 6, 8}},      // each snapshot fills a batch: all of it sent at once, in 2 requests
		{true, []int{0, 0, 0, 0, 0, 9}}, // the sixth is half of 12: the 18 records in 9 requests
	} {
		var mu sync.Mutex
		posts := 0
		s := New(Config{
			Name: "test", Batch: 2, Snapshots: 12, Interval: time.Hour, Linger: tc.linger,
			MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond,
			Post: func(_ context.Context, body []byte, points int) (*WriteError, error) {
				mu.Lock()
				posts++
				mu.Unlock()
				return nil, nil
			},
		})
		for i, want := range tc.posts {
			if _, err := s.Append(func(buf []byte, ends, pts []int) ([]byte, []int, []int, error) {
				for range 3 {
					buf = append(buf, 'x')
					ends = append(ends, len(buf))
				}
				return buf, ends, pts, nil
			}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(2 * time.Second)
			for {
				mu.Lock()
				got := posts
				mu.Unlock()
				if got == want && s.Stats().Buffered == 3*(i+1)-sentPoints(s) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("linger %v: after snapshot %d: %d requests, want %d (%+v)", tc.linger, i+1, got, want, s.Stats())
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		time.Sleep(50 * time.Millisecond) // nothing more is sent
		mu.Lock()
		if last := tc.posts[len(tc.posts)-1]; posts != last {
			t.Errorf("linger %v: %d requests in the end, want %d", tc.linger, posts, last)
		}
		mu.Unlock()
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func sentPoints(s *Sender) int { return int(s.Stats().Sent) }
