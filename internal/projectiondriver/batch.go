package projectiondriver

import (
	"context"
	"errors"
	"slices"
)

// Batch is the unit of work of one run of a checkpoint commit's apply:
// the SQL query stores keep the read-model writes of a batch of events
// in it, by table and key, instead of running one statement per write,
// and write them out at the end of the batch, in the commit's
// transaction, as one multi-row statement per table (or a few, within
// the database's limits). Reads look in it first, so a handler reads
// what an earlier event of the batch wrote, and a document read once
// from the database is not read again in the same batch.
//
// The runner makes a fresh Batch for each run of apply ([WithBatch]),
// flushes it at the end of the run ([Batch.Flush]), before the commit
// moves the checkpoint, and drops it with the transaction when apply
// fails: nothing buffered outlives its transaction. A Batch is used by
// one goroutine at a time (the handlers of a batch run in turn).
type Batch struct {
	tables map[string]*BatchTable
	order  []*BatchTable // in first-use order: the order of the flush
	err    error         // of a flush that failed: the batch cannot commit
}

// NewBatch returns an empty Batch.
func NewBatch() *Batch { return &Batch{tables: make(map[string]*BatchTable)} }

type batchKey struct{}

// WithBatch returns a ctx carrying b.
func WithBatch(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// BatchFrom returns the Batch in ctx, or nil.
func BatchFrom(ctx context.Context) *Batch {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	return b
}

// Row is one buffered write: Value is the document to upsert under Key.
type Row struct {
	Key   string
	Value string
}

// FlushFunc writes rows, all of one table and with distinct keys, in the
// transaction of ctx.
type FlushFunc func(ctx context.Context, rows []Row) error

// BatchTable is the part of a [Batch] that holds one table's documents.
type BatchTable struct {
	flush FlushFunc
	docs  map[string]*doc
	dirty []string // keys written since the last flush, in first-write order
}

type doc struct {
	value string
	found bool // a document is stored under the key (or will be at the flush)
	dirty bool
}

// Table returns the buffer of the table that id names, made the first
// time with flush, which writes its rows. id must tell apart every table
// a transaction can write (the backends use the table's qualified name).
func (b *Batch) Table(id string, flush FlushFunc) *BatchTable {
	if t, ok := b.tables[id]; ok {
		return t
	}
	t := &BatchTable{flush: flush, docs: make(map[string]*doc)}
	b.tables[id] = t
	b.order = append(b.order, t)
	return t
}

// Get returns what the batch knows of key: known is false when the
// document must be read from the database; otherwise found tells whether
// a document is stored under key, and value is it.
func (t *BatchTable) Get(key string) (value string, found, known bool) {
	d, ok := t.docs[key]
	if !ok {
		return "", false, false
	}
	return d.value, d.found, true
}

// Loaded records what the database holds under key, read in the batch's
// transaction: value when found, or no document. A key already known is
// left as it is (the batch's own write is newer than the database's).
func (t *BatchTable) Loaded(key, value string, found bool) {
	if _, ok := t.docs[key]; ok {
		return
	}
	t.docs[key] = &doc{value: value, found: found}
}

// Unknown returns the keys of keys whose documents the batch does not
// know, for a prefetch to read.
func (t *BatchTable) Unknown(keys []string) []string {
	var out []string
	for _, k := range keys {
		if _, ok := t.docs[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// Put buffers the upsert of value under key.
func (t *BatchTable) Put(key, value string) {
	d, ok := t.docs[key]
	if !ok {
		d = &doc{}
		t.docs[key] = d
	}
	if !d.dirty {
		t.dirty = append(t.dirty, key)
	}
	d.value, d.found, d.dirty = value, true, true
}

// Pending reports how many writes wait for the flush.
func (b *Batch) Pending() int {
	n := 0
	for _, t := range b.order {
		n += len(t.dirty)
	}
	return n
}

// Flush writes the buffered writes of every table in the transaction of
// ctx, and forgets everything the batch knew: after a flush, reads go to
// the database again, which then holds the batch's writes (and whatever
// the caller writes through the transaction itself). A flush that
// failed leaves the transaction unusable: its error is returned again
// by every later Flush, so that the commit fails.
func (b *Batch) Flush(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	for _, t := range b.order {
		if len(t.dirty) == 0 {
			continue
		}
		// In key order: concurrent transactions writing some of the
		// same rows lock them in one order.
		slices.Sort(t.dirty)
		rows := make([]Row, len(t.dirty))
		for i, k := range t.dirty {
			rows[i] = Row{Key: k, Value: t.docs[k].value}
		}
		if err := t.flush(ctx, rows); err != nil {
			b.err = &FlushError{Err: err}
			return b.err
		}
		t.dirty = t.dirty[:0]
	}
	for _, t := range b.order {
		clear(t.docs)
	}
	return nil
}

// FlushError is the error of a [Batch.Flush] whose statement failed: the
// database refused a buffered write (or the connection failed), at the
// end of the batch rather than at the write, so which event's write it
// was is unknown. The runner runs the batch again without buffering to
// find it.
type FlushError struct{ Err error }

func (e *FlushError) Error() string {
	return "projection: write the batch's read-model rows: " + e.Err.Error()
}
func (e *FlushError) Unwrap() error { return e.Err }

// IsFlushError reports whether err is, or wraps, a [*FlushError].
func IsFlushError(err error) bool {
	var fe *FlushError
	return errors.As(err, &fe)
}

// Chunks splits rows into runs of at most maxRows rows and, past the
// first row of a run, at most maxBytes bytes of keys and values, for
// statements that must stay within a database's limits on parameters
// and on the size of one message.
func Chunks(rows []Row, maxRows, maxBytes int) [][]Row {
	var out [][]Row
	for len(rows) > 0 {
		n, size := 0, 0
		for n < len(rows) && n < maxRows {
			s := len(rows[n].Key) + len(rows[n].Value)
			if n > 0 && size+s > maxBytes {
				break
			}
			size += s
			n++
		}
		out = append(out, rows[:n])
		rows = rows[n:]
	}
	return out
}

// Prefetcher is a query store that reads many documents into a batch at
// once: the runner calls Prefetch with the keys projection.Prefetch
// declares for the batch's events, before their handlers run, with the
// ctx it gives them. Outside a batch of the store's own transaction,
// Prefetch does nothing. Keys that are not valid are left for the
// handler's read to report.
type Prefetcher interface {
	Prefetch(ctx context.Context, keys []string) error
}
