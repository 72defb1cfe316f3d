package influx

import "slices"

// chunk is encoded lines: line i is buf[start(i):ends[i]], each ending in
// '\n'. Lines before head are gone (sent, dropped or taken).
type chunk struct {
	buf  []byte
	ends []int
	head int
}

func (c *chunk) n() int { return len(c.ends) - c.head }

func (c *chunk) start(i int) int {
	if i == 0 {
		return 0
	}
	return c.ends[i-1]
}

// lines returns lines [lo, hi) (absolute indices) as one byte slice.
func (c *chunk) lines(lo, hi int) []byte { return c.buf[c.start(lo):c.ends[hi-1]] }

// queue is the bounded buffer: chunks oldest first, n lines in all.
type queue struct {
	chunks []*chunk
	n      int
	free   []*chunk
}

func (q *queue) push(c *chunk) {
	q.chunks = append(q.chunks, c)
	q.n += c.n()
}

// pushFront puts a batch that could not be sent back in front: its lines
// are older than anything buffered since.
func (q *queue) pushFront(c *chunk) {
	if c.n() == 0 {
		q.recycle(c)
		return
	}
	q.chunks = slices.Insert(q.chunks, 0, c)
	q.n += c.n()
}

// dropOldest drops k lines from the front.
func (q *queue) dropOldest(k int) {
	for k > 0 && len(q.chunks) > 0 {
		c := q.chunks[0]
		d := min(k, c.n())
		c.head += d
		q.n -= d
		k -= d
		if c.n() == 0 {
			q.popFront()
		}
	}
}

func (q *queue) popFront() {
	c := q.chunks[0]
	q.chunks[0] = nil
	q.chunks = append(q.chunks[:0], q.chunks[1:]...)
	q.recycle(c)
}

// take removes up to max lines from the front into one chunk.
func (q *queue) take(max int) *chunk {
	if q.n == 0 {
		return nil
	}
	b := q.get()
	for len(b.ends) < max && len(q.chunks) > 0 {
		c := q.chunks[0]
		k := min(max-len(b.ends), c.n())
		base := len(b.buf) - c.start(c.head)
		b.buf = append(b.buf, c.lines(c.head, c.head+k)...)
		for _, e := range c.ends[c.head : c.head+k] {
			b.ends = append(b.ends, e+base)
		}
		c.head += k
		q.n -= k
		if c.n() == 0 {
			q.popFront()
		}
	}
	return b
}

// get returns an empty chunk, recycled when one is free.
func (q *queue) get() *chunk {
	if k := len(q.free); k > 0 {
		c := q.free[k-1]
		q.free = q.free[:k-1]
		return c
	}
	return new(chunk)
}

const maxFree = 4

func (q *queue) recycle(c *chunk) {
	if len(q.free) >= maxFree || cap(c.buf) > 64<<20 {
		return
	}
	c.buf, c.ends, c.head = c.buf[:0], c.ends[:0], 0
	q.free = append(q.free, c)
}
