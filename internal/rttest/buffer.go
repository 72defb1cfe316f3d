package rttest

import (
	"strings"
	"sync"
)

// Buffer collects what a goroutine (a program run in-process, a child's
// stderr) writes, for the test to read while it runs.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
