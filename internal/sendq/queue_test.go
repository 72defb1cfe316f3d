package sendq

import (
	"strconv"
	"testing"
)

// chunkOf makes a chunk of records r0, r1, ... with the given point counts
// (weighted) or one point each.
func chunkOf(first int, weights []int, weighted bool) *chunk {
	c := &chunk{}
	total := 0
	for i, w := range weights {
		c.buf = append(c.buf, "r"+strconv.Itoa(first+i)+";"...)
		c.ends = append(c.ends, len(c.buf))
		total += w
		if weighted {
			c.pts = append(c.pts, total)
		}
	}
	return c
}

// TestQueueWeights: records and points are counted exactly through push,
// drop, take and pushFront, and the bytes of a take are the records in
// order.
func TestQueueWeights(t *testing.T) {
	q := queue{weighted: true}
	q.push(chunkOf(0, []int{5, 1, 2}, true))
	q.push(chunkOf(3, []int{10, 20}, true))
	if q.n != 5 || q.p != 38 {
		t.Fatalf("n %d p %d, want 5 38", q.n, q.p)
	}
	if lost := q.dropOldest(2); lost != 6 || q.n != 3 || q.p != 32 {
		t.Fatalf("dropOldest(2) lost %d, n %d p %d", lost, q.n, q.p)
	}
	b := q.take(2)
	if string(b.records(b.head, len(b.ends))) != "r2;r3;" || b.points(b.head, len(b.ends)) != 12 {
		t.Fatalf("take: %q, %d points", b.records(b.head, len(b.ends)), b.points(b.head, len(b.ends)))
	}
	if q.n != 1 || q.p != 20 {
		t.Fatalf("after take: n %d p %d", q.n, q.p)
	}
	b.head++ // the first record sent, the second failed
	q.pushFront(b)
	if q.n != 2 || q.p != 30 {
		t.Fatalf("after pushFront: n %d p %d", q.n, q.p)
	}
	b = q.take(10)
	if string(b.records(b.head, len(b.ends))) != "r3;r4;" || b.points(b.head, len(b.ends)) != 30 || q.n != 0 || q.p != 0 {
		t.Fatalf("take all: %q, %d points; n %d p %d", b.records(b.head, len(b.ends)), b.points(b.head, len(b.ends)), q.n, q.p)
	}
	// A recycled chunk is reused unweighted by an unweighted queue.
	q.recycle(b)
	u := queue{free: q.free}
	c := u.get()
	c.buf, c.ends = append(c.buf, "x;"...), append(c.ends, 2)
	if c.points(0, 1) != 1 {
		t.Fatalf("unweighted record has %d points", c.points(0, 1))
	}
}

// TestBoundExtra: records appended between snapshots (AppendExtra) count
// with the latest snapshot: they take no snapshot's place in the bound,
// and leave it when that snapshot does.
func TestBoundExtra(t *testing.T) {
	var b bound
	b.addExtra(1) // before any snapshot
	if b.limit != 1 {
		t.Fatalf("limit %d, want 1", b.limit)
	}
	b.add(3, 2)
	b.addExtra(2)
	if b.limit != 6 {
		t.Fatalf("limit %d, want 6 (1 + 3 + 2)", b.limit)
	}
	b.add(4, 2) // the ring is full: the first entry (1) goes
	if b.limit != 9 {
		t.Fatalf("limit %d, want 9 (3 + 2 and 4)", b.limit)
	}
	b.addExtra(1)
	b.add(5, 2) // the 3 + 2 snapshot goes
	if b.limit != 10 {
		t.Fatalf("limit %d, want 10 (4 + 1 and 5)", b.limit)
	}
	b.add(6, 2)
	if b.limit != 11 {
		t.Fatalf("limit %d, want 11 (5 and 6)", b.limit)
	}
}
