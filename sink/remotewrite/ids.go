package remotewrite

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"

	"github.com/metricsd/metricsd/internal/wire"
)

// recordSize is the size of a record in the Sink's buffer: a series id
// (uint32), the sample's time in milliseconds (int64) and its value
// (float64 bits), little endian.
const recordSize = 20

// seriesTable numbers the series the Sink's encoder writes, so that its
// buffer holds a 20-byte record per sample (assembled into requests by an
// assembler, each series once with all its samples of the batch) instead
// of a ~250-byte TimeSeries repeating every label with every sample. A
// series is its label block, byte for byte: the table maps each block to
// an id. The block is built and looked up only when a series is new or its
// labels changed: within the series of one base label block (a container's
// labels, byte for byte), a series is expected at the place it had the
// snapshot before, with the same name and own labels (compared, bytes and
// all); anything else is built and looked up.
//
// Ids stay valid while records refer to them: the table forgets series
// (compact) only when no record is buffered or being sent. Not safe for
// concurrent use: the Sink's encoder lock guards it.
type seriesTable struct {
	ids    map[string]uint32 // label block → id
	labels []string          // id → label block
	blocks map[string]*seriesBlock
	block  *seriesBlock // the current base's
	ord    int          // the current series' place in it
	lb     []byte

	emitted, blocksUsed         int // this snapshot's
	lastEmitted, lastBlocksUsed int // the last snapshot's
	compactions                 uint64
}

// seriesBlock is the series of one base label block, in the order the
// last snapshot wrote them.
type seriesBlock struct{ series []blockSeries }

type blockSeries struct {
	name   *metricName
	l1, l2 []byte // the own labels' records
	id     uint32
}

func newSeriesTable() *seriesTable {
	return &seriesTable{ids: map[string]uint32{}, blocks: map[string]*seriesBlock{}}
}

// startBlock makes base (a container's labels, encoded) the block of the
// series that follow.
func (t *seriesTable) startBlock(base []byte) {
	b, ok := t.blocks[string(base)]
	if !ok {
		b = &seriesBlock{}
		t.blocks[string(base)] = b
	}
	t.block, t.ord = b, 0
	t.blocksUsed++
}

// endSnapshot closes a snapshot's count of series and blocks.
func (t *seriesTable) endSnapshot() {
	t.lastEmitted, t.lastBlocksUsed = t.emitted, t.blocksUsed
	t.emitted, t.blocksUsed = 0, 0
}

// compact forgets every series when the table holds over twice what the
// last snapshot used, and some (the series of renamed, relabelled and
// departed containers), so that churn does not grow it without bound. It
// must be called only when no record refers to an id.
func (t *seriesTable) compact() {
	if len(t.labels) <= 2*t.lastEmitted+1024 && len(t.blocks) <= 2*t.lastBlocksUsed+64 {
		return
	}
	clear(t.ids)
	clear(t.blocks)
	clear(t.labels)
	t.labels = t.labels[:0]
	t.block = nil
	t.compactions++
}

// seriesID appends the record of a series (see series) in the table's
// form: its id and the sample.
func (e *encoder) seriesID(name *metricName, v float64, l1, l2 *ownLabel) {
	t := e.ids
	var r1, r2 []byte
	if l1 != nil {
		r1 = l1.rec
	}
	if l2 != nil {
		r2 = l2.rec
	}
	b, k := t.block, t.ord
	t.ord++
	if k < len(b.series) {
		if s := &b.series[k]; s.name == name && bytes.Equal(s.l1, r1) && bytes.Equal(s.l2, r2) {
			e.appendRecord(s.id, v)
			return
		}
	}
	t.lb = e.appendLabels(t.lb[:0], name, l1, l2)
	id, ok := t.ids[string(t.lb)]
	if !ok {
		id = uint32(len(t.labels))
		lb := string(t.lb)
		t.ids[lb] = id
		t.labels = append(t.labels, lb)
	}
	s := blockSeries{name: name, l1: bytes.Clone(r1), l2: bytes.Clone(r2), id: id}
	if k < len(b.series) {
		b.series[k] = s
	} else {
		b.series = append(b.series, s)
	}
	e.appendRecord(id, v)
}

func (e *encoder) appendRecord(id uint32, v float64) {
	b := binary.LittleEndian.AppendUint32(e.buf, id)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.ts))
	e.buf = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	e.ends = append(e.ends, len(e.buf))
	e.ids.emitted++
}

// assembler makes a WriteRequest of a batch of records: each series once,
// with its samples in the order of the records (their time order). Once its
// buffers have grown it allocates nothing. Not safe for concurrent use.
type assembler struct {
	cnt, next []int32 // per id: samples, and where the next goes in perm
	order     []uint32
	perm      []int32 // record indices, grouped by series
}

// assemble appends to dst the WriteRequest of recs (whole records), whose
// ids are indices of labels. It returns how many records it left out
// because their id is not: none, unless the series table's invariant (an
// id outlives its records) is broken, which the sink reports as a refusal
// rather than losing them unseen.
func (a *assembler) assemble(dst, recs []byte, labels []string) ([]byte, int) {
	n := len(recs) / recordSize
	if len(a.cnt) < len(labels) {
		a.cnt = make([]int32, len(labels))
		a.next = make([]int32, len(labels))
	}
	a.order = a.order[:0]
	unknown := 0
	for i := range n {
		id := binary.LittleEndian.Uint32(recs[i*recordSize:])
		if int(id) >= len(labels) {
			unknown++
			continue
		}
		if a.cnt[id] == 0 {
			a.order = append(a.order, id)
		}
		a.cnt[id]++
	}
	var p int32
	for _, id := range a.order {
		a.next[id] = p
		p += a.cnt[id]
	}
	a.perm = slices.Grow(a.perm[:0], int(p))[:p]
	for i := range n {
		id := binary.LittleEndian.Uint32(recs[i*recordSize:])
		if int(id) < len(labels) {
			a.perm[a.next[id]] = int32(i)
			a.next[id]++
		}
	}
	p = 0
	for _, id := range a.order {
		idx := a.perm[p : p+a.cnt[id]]
		p += a.cnt[id]
		a.cnt[id] = 0
		size := len(labels[id])
		for _, i := range idx {
			ts := binary.LittleEndian.Uint64(recs[int(i)*recordSize+4:])
			size += 12 + wire.SizeVarint(ts)
		}
		dst = wire.AppendTag(dst, 1, wire.Bytes)
		dst = wire.AppendVarint(dst, uint64(size))
		dst = append(dst, labels[id]...)
		for _, i := range idx {
			r := recs[int(i)*recordSize:]
			ts := binary.LittleEndian.Uint64(r[4:])
			// TimeSeries.samples (2): Sample{value = 1 double, timestamp = 2}
			dst = append(dst, 2<<3|wire.Bytes, byte(10+wire.SizeVarint(ts)), 1<<3|wire.Fixed64)
			dst = append(dst, r[12:20]...)
			dst = append(dst, 2<<3|wire.Varint)
			dst = wire.AppendVarint(dst, ts)
		}
	}
	return dst, unknown
}
