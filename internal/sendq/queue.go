package sendq

import "slices"

// chunk is encoded records: record i is buf[start(i):ends[i]] and carries
// weight pts[i]-pts[i-1] points. Records before head are gone (sent,
// dropped or taken).
type chunk struct {
	buf  []byte
	ends []int
	pts  []int // cumulative points, one per record; empty: one point per record
	head int
}

func (c *chunk) n() int { return len(c.ends) - c.head }

func (c *chunk) start(i int) int {
	if i == 0 {
		return 0
	}
	return c.ends[i-1]
}

// points is the weight of records [lo, hi).
func (c *chunk) points(lo, hi int) int {
	if len(c.pts) != len(c.ends) {
		return hi - lo
	}
	p0 := 0
	if lo > 0 {
		p0 = c.pts[lo-1]
	}
	if hi == 0 {
		return 0
	}
	return c.pts[hi-1] - p0
}

// records returns records [lo, hi) (absolute indices) as one byte slice.
func (c *chunk) records(lo, hi int) []byte { return c.buf[c.start(lo):c.ends[hi-1]] }

// queue is the bounded buffer: chunks oldest first, n records and p points
// in all.
type queue struct {
	chunks   []*chunk
	n, p     int
	free     []*chunk
	weighted bool // records carry their point counts (chunk.pts)
	bound    bound
	maxFree  int // idle chunks kept for reuse, at least 2
}

// bound is the buffer's size in snapshots: limit is the number of records
// of the latest k snapshots appended (whatever was sent of them since).
type bound struct {
	sizes []int // ring of the latest snapshots' record counts
	next  int
	limit int
}

// add records a snapshot of n records, keeping the latest k.
func (b *bound) add(n, k int) {
	if len(b.sizes) < k {
		b.sizes = append(b.sizes, n)
		b.limit += n
		return
	}
	b.next %= len(b.sizes)
	b.limit += n - b.sizes[b.next]
	b.sizes[b.next] = n
	b.next++
}

// addExtra counts n records with the latest snapshot.
func (b *bound) addExtra(n int) {
	if len(b.sizes) == 0 {
		b.sizes = append(b.sizes, 0)
	}
	last := (b.next - 1 + len(b.sizes)) % len(b.sizes)
	b.sizes[last] += n
	b.limit += n
}

func (q *queue) push(c *chunk) {
	q.chunks = append(q.chunks, c)
	q.n += c.n()
	q.p += c.points(c.head, len(c.ends))
}

// pushFront puts a batch that could not be sent back in front: its records
// are older than anything buffered since.
func (q *queue) pushFront(c *chunk) {
	if c.n() == 0 {
		q.recycle(c)
		return
	}
	q.chunks = slices.Insert(q.chunks, 0, c)
	q.n += c.n()
	q.p += c.points(c.head, len(c.ends))
}

// dropOldest drops k records from the front and returns their points.
func (q *queue) dropOldest(k int) (points int) {
	for k > 0 && len(q.chunks) > 0 {
		c := q.chunks[0]
		d := min(k, c.n())
		p := c.points(c.head, c.head+d)
		c.head += d
		q.n -= d
		q.p -= p
		points += p
		k -= d
		if c.n() == 0 {
			q.popFront()
		}
	}
	return points
}

func (q *queue) popFront() {
	c := q.chunks[0]
	q.chunks[0] = nil
	q.chunks = append(q.chunks[:0], q.chunks[1:]...)
	q.recycle(c)
}

// take removes up to max records from the front into one chunk. When the
// first chunk fits whole it becomes the batch itself, without a copy (its
// records before head are gone already); the records of the next chunks
// are copied in after it.
func (q *queue) take(max int) *chunk {
	if q.n == 0 {
		return nil
	}
	var b *chunk
	if c := q.chunks[0]; c.n() <= max {
		b = c
		q.chunks[0] = nil
		q.chunks = append(q.chunks[:0], q.chunks[1:]...)
		q.n -= c.n()
		q.p -= c.points(c.head, len(c.ends))
	} else {
		b = q.get()
	}
	for b.n() < max && len(q.chunks) > 0 {
		c := q.chunks[0]
		k := min(max-b.n(), c.n())
		base := len(b.buf) - c.start(c.head)
		b.buf = append(b.buf, c.records(c.head, c.head+k)...)
		for _, e := range c.ends[c.head : c.head+k] {
			b.ends = append(b.ends, e+base)
		}
		if q.weighted {
			prev := 0
			if len(b.pts) > 0 {
				prev = b.pts[len(b.pts)-1]
			}
			for i := c.head; i < c.head+k; i++ {
				prev += c.points(i, i+1)
				b.pts = append(b.pts, prev)
			}
		}
		p := c.points(c.head, c.head+k)
		c.head += k
		q.n -= k
		q.p -= p
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

// recycle keeps c for reuse, up to maxFree idle chunks: the chunks a
// steady state goes round (a snapshot of 33 containers is ~1 MB of
// remote_write records), so that it allocates and faults in no memory.
func (q *queue) recycle(c *chunk) {
	if len(q.free) >= max(q.maxFree, 2) || cap(c.buf) > 64<<20 {
		return
	}
	c.buf, c.ends, c.pts, c.head = c.buf[:0], c.ends[:0], c.pts[:0], 0
	q.free = append(q.free, c)
}
