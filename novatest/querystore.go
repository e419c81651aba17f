package novatest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/internal/querystore"
	"github.com/nova-go/nova/projection"
)

// RunQueryStore runs the query store conformance suite against the stores
// newStore returns. newStore must return a fresh, empty store each time it
// is called (a server-backed store may use a fresh key prefix, table or
// collection) and register its cleanup with t; it is called from parallel
// subtests.
//
// Values are compared as JSON, not as bytes: a store may hand back a
// value re-encoded by its database (other spacing, key order or number
// spelling), never with another meaning. The cases:
//
//   - Missing: a key never written fails with nova.ErrNotFound, raw and
//     typed.
//   - Overwrite: an upsert replaces the value of its key and of no other.
//   - RoundTrip: typed values (strings with quotes and unicode, large
//     integers, nested maps and slices, nulls) and top-level JSON values
//     of every kind come back equal.
//   - Concurrent: writers upsert many keys and one shared key at once while
//     readers read them: no reader sees a torn or foreign value, the last
//     write of each key wins, the shared key holds one whole value.
//   - OddKeys: keys with spaces, quotes, %, unicode, ':' and '/', and a key
//     of exactly cqrs.MaxKeyLen bytes are kept apart and round-trip.
//   - BadInput: empty, oversize, control-character and invalid UTF-8
//     keys, and values that are not JSON fail with
//     nova.ErrInvalid and write nothing.
//   - Copies: changing a value after upserting it, or a value read, does
//     not change the store.
//   - Cancel: a cancelled context fails with its error and writes nothing.
//
// The sizes of Concurrent follow -nova.scale and NOVA_TEST_SCALE (see the
// package documentation) times [WithScale]'s factor; -short divides them
// by ten. Of the options, only WithScale applies here.
func RunQueryStore(t *testing.T, newStore func(t *testing.T) cqrs.QueryStore, opts ...StoreOption) {
	t.Helper()
	o := storeOptions{scale: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if !(o.scale > 0) || math.IsInf(o.scale, 0) {
		t.Fatalf("novatest: WithScale(%v): want a positive number", o.scale)
	}
	scale, _ := scaleSetting(t)
	scale *= o.scale
	if testing.Short() {
		scale /= 10
	}
	q := &qsuite{newStore: newStore, scale: scale}
	t.Run("Missing", q.testMissing)
	t.Run("Overwrite", q.testOverwrite)
	t.Run("RoundTrip", q.testRoundTrip)
	t.Run("Concurrent", q.testConcurrent)
	t.Run("OddKeys", q.testOddKeys)
	t.Run("BadInput", q.testBadInput)
	t.Run("Copies", q.testCopies)
	t.Run("Cancel", q.testCancel)
}

type qsuite struct {
	newStore func(t *testing.T) cqrs.QueryStore
	scale    float64
}

func (q *qsuite) n(base int) int { return max(1, int(math.Round(float64(base)*q.scale))) }

// jsonEqual reports whether a and b are valid JSON with the same meaning.
func jsonEqual(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// wantValue fails t unless key holds want.
func wantValue(t *testing.T, qs cqrs.QueryStore, key string, want string) {
	t.Helper()
	got, err := qs.GetRaw(t.Context(), key)
	if err != nil {
		t.Fatalf("GetRaw(%q): %v, want %s", key, err, want)
	}
	if !jsonEqual(got, []byte(want)) {
		t.Fatalf("GetRaw(%q) = %s, want %s", key, got, want)
	}
}

// wantMissing fails t unless key holds nothing.
func wantMissing(t *testing.T, qs cqrs.QueryStore, key string) {
	t.Helper()
	got, err := qs.GetRaw(t.Context(), key)
	if !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("GetRaw(%q) = %s, %v; want an error matching nova.ErrNotFound", key, got, err)
	}
}

func upsert(t *testing.T, qs cqrs.QueryStore, key, value string) {
	t.Helper()
	if err := qs.UpsertRaw(t.Context(), key, json.RawMessage(value)); err != nil {
		t.Fatalf("UpsertRaw(%q, %s): %v", key, value, err)
	}
}

func (q *qsuite) testMissing(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	wantMissing(t, qs, "never-written")
	if _, err := cqrs.GetProjection[map[string]any](t.Context(), qs, "never-written"); !errors.Is(err, nova.ErrNotFound) {
		t.Fatalf("GetProjection of a missing key: %v, want nova.ErrNotFound", err)
	}
	upsert(t, qs, "written", `{"a":1}`)
	wantMissing(t, qs, "Written") // keys are case-sensitive
	wantMissing(t, qs, "written ")
}

func (q *qsuite) testOverwrite(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	upsert(t, qs, "order-1", `{"status":"placed","lines":2}`)
	upsert(t, qs, "order-2", `{"status":"placed","lines":5}`)
	wantValue(t, qs, "order-1", `{"status":"placed","lines":2}`)
	upsert(t, qs, "order-1", `{"status":"shipped"}`)
	wantValue(t, qs, "order-1", `{"status":"shipped"}`) // replaced, not merged
	wantValue(t, qs, "order-2", `{"status":"placed","lines":5}`)
	upsert(t, qs, "order-1", `[1,2,3]`) // a value may change shape
	wantValue(t, qs, "order-1", `[1,2,3]`)
}

type roundTripView struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Total   int64             `json:"total"`
	Ratio   float64           `json:"ratio"`
	Paid    bool              `json:"paid"`
	Lines   []roundTripLine   `json:"lines"`
	Tags    map[string]string `json:"tags"`
	Note    *string           `json:"note"`
	Updated time.Time         `json:"updated"`
}

type roundTripLine struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

func (q *qsuite) testRoundTrip(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	ctx := t.Context()
	want := roundTripView{
		ID:      "order-42",
		Name:    `Zoë "the" <buyer> & co — 注文 🚀 \ back`,
		Total:   1 << 50, // exact in a float64 too, as every JSON store can keep it
		Ratio:   0.25,
		Paid:    true,
		Lines:   []roundTripLine{{SKU: "a-1", Qty: 2}, {SKU: "b/2", Qty: 1}},
		Tags:    map[string]string{"channel": "web", "": "empty key", "ключ": "значение"},
		Updated: time.Date(2026, 11, 26, 11, 0, 0, 123456789, time.UTC),
	}
	if err := cqrs.UpsertProjection(ctx, qs, "view", want); err != nil {
		t.Fatalf("UpsertProjection: %v", err)
	}
	got, err := cqrs.GetProjection[roundTripView](ctx, qs, "view")
	if err != nil {
		t.Fatalf("GetProjection: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetProjection = %+v, want %+v", got, want)
	}
	for i, v := range []string{`null`, `true`, `false`, `0`, `-12.5`, `"text"`, `""`, `[]`, `{}`, `[{"a":[null,{"b":"c"}]}]`, " {\n\t\"spaced\" : 1 }\n"} {
		key := fmt.Sprintf("value-%d", i)
		upsert(t, qs, key, v)
		wantValue(t, qs, key, v)
	}
}

// concurrentValue is what Concurrent writes: a value whose padding is
// derived from its other fields, so a torn value shows.
func concurrentValue(key string, writer, seq int) string {
	pad := strings.Repeat(string(rune('a'+(writer*7+seq)%26)), 64+(seq%5)*200)
	return fmt.Sprintf(`{"key":%q,"writer":%d,"seq":%d,"pad":%q}`, key, writer, seq, pad)
}

type concurrentDoc struct {
	Key    string `json:"key"`
	Writer int    `json:"writer"`
	Seq    int    `json:"seq"`
	Pad    string `json:"pad"`
}

// checkConcurrent reports what is wrong with a value read from key.
func checkConcurrent(key string, raw []byte) (concurrentDoc, error) {
	var d concurrentDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("key %q holds a value that is not JSON (torn?): %v", key, err)
	}
	if d.Key != key {
		return d, fmt.Errorf("key %q holds the value of key %q", key, d.Key)
	}
	if want := concurrentValue(key, d.Writer, d.Seq); !jsonEqual(raw, []byte(want)) {
		return d, fmt.Errorf("key %q holds a torn value: %.80s…", key, raw)
	}
	return d, nil
}

func (q *qsuite) testConcurrent(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	ctx := t.Context()
	keys, seqs, shared, readers := q.n(8), q.n(50), q.n(8), 2

	var writers, readWG sync.WaitGroup
	stop := make(chan struct{})
	// One writer per key, in order: the last write of each key is known.
	for k := range keys {
		writers.Go(func() {
			key := fmt.Sprintf("key-%d", k)
			for s := 1; s <= seqs; s++ {
				if err := qs.UpsertRaw(ctx, key, json.RawMessage(concurrentValue(key, 0, s))); err != nil {
					t.Errorf("UpsertRaw(%q): %v", key, err)
					return
				}
			}
		})
	}
	// Many writers on one key: one of them wins, whole.
	for w := range shared {
		writers.Go(func() {
			for s := 1; s <= seqs/5+1; s++ {
				if err := qs.UpsertRaw(ctx, "shared", json.RawMessage(concurrentValue("shared", w, s))); err != nil {
					t.Errorf("UpsertRaw(shared): %v", err)
					return
				}
			}
		})
	}
	for r := range readers {
		readWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := "shared"
				if i%2 == 0 {
					key = fmt.Sprintf("key-%d", (i/2+r)%keys)
				}
				raw, err := qs.GetRaw(ctx, key)
				if errors.Is(err, nova.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Errorf("GetRaw(%q): %v", key, err)
					return
				}
				if _, err := checkConcurrent(key, raw); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readWG.Wait()
	if t.Failed() {
		return
	}
	for k := range keys {
		key := fmt.Sprintf("key-%d", k)
		raw, err := qs.GetRaw(ctx, key)
		if err != nil {
			t.Fatalf("GetRaw(%q): %v", key, err)
		}
		d, err := checkConcurrent(key, raw)
		if err != nil {
			t.Fatal(err)
		}
		if d.Seq != seqs {
			t.Fatalf("key %q holds write %d, want the last, %d", key, d.Seq, seqs)
		}
	}
	raw, err := qs.GetRaw(ctx, "shared")
	if err != nil {
		t.Fatalf("GetRaw(shared): %v", err)
	}
	if _, err := checkConcurrent("shared", raw); err != nil {
		t.Fatal(err)
	}
}

// oddKeys are keys a store must keep apart and give back unchanged.
func oddKeys() []string {
	long := strings.Repeat("é", cqrs.MaxKeyLen/2) // exactly MaxKeyLen bytes
	return []string{
		"with space", " leading", "trailing ", `dq"uote`, "sq'uote", "back`tick", `back\slash`,
		"100%", "%25", "%", "a%2Fb", "a/b", "a:b", "a::b", "a:/b", ":", "/", "//", "projection:a",
		"*", "?", "[x]", "{x}", "a.b", "$set", "a;b", "--", "Ünïcödé", "注文", "🚀", "a\u00a0b", "a\u200bb",
		"a\u2028b", long,
	}
}

func (q *qsuite) testOddKeys(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	keys := oddKeys()
	if n := len(keys[len(keys)-1]); n != cqrs.MaxKeyLen {
		t.Fatalf("novatest: long key has %d bytes, want %d", n, cqrs.MaxKeyLen)
	}
	for i, k := range keys {
		v, _ := json.Marshal(map[string]any{"i": i, "key": k})
		if err := qs.UpsertRaw(t.Context(), k, v); err != nil {
			t.Fatalf("UpsertRaw(%q): %v", k, err)
		}
	}
	for i, k := range keys {
		v, _ := json.Marshal(map[string]any{"i": i, "key": k})
		wantValue(t, qs, k, string(v))
	}
	wantMissing(t, qs, "a%3Ab")
	wantMissing(t, qs, "a b")
}

func (q *qsuite) testBadInput(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	ctx := t.Context()
	upsert(t, qs, "kept", `{"v":1}`)
	tests := []struct {
		name  string
		ctx   context.Context
		key   string
		value string
	}{
		{"empty key", ctx, "", `{}`},
		{"oversize key", ctx, strings.Repeat("k", cqrs.MaxKeyLen+1), `{}`},
		{"oversize unicode key", ctx, strings.Repeat("é", cqrs.MaxKeyLen/2) + "x", `{}`},
		{"NUL in key", ctx, "a\x00b", `{}`},
		{"newline in key", ctx, "a\nb", `{}`},
		{"DEL in key", ctx, "a\x7fb", `{}`},
		{"invalid UTF-8 key", ctx, "a\xffb", `{}`},
		{"empty value", ctx, "new", ``},
		{"truncated JSON", ctx, "new", `{"a":`},
		{"trailing garbage", ctx, "new", `{"a":1}x`},
		{"two values", ctx, "new", `{} {}`},
		{"single quotes", ctx, "new", `{'a':1}`},
		{"bare word", ctx, "new", `nope`},
		{"invalid UTF-8 in JSON", ctx, "new", "\"a\xffb\""},
		{"bad JSON over a stored value", ctx, "kept", `{"v":2`},
	}
	for _, tt := range tests {
		var value json.RawMessage
		if tt.value != "" {
			value = json.RawMessage(tt.value)
		}
		if err := qs.UpsertRaw(tt.ctx, tt.key, value); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("%s: UpsertRaw = %v, want an error matching nova.ErrInvalid", tt.name, err)
		}
	}
	for _, key := range []string{"", strings.Repeat("k", cqrs.MaxKeyLen+1), "a\x00b", "a\xffb"} {
		if _, err := qs.GetRaw(ctx, key); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("GetRaw(%q) = %v, want an error matching nova.ErrInvalid", key, err)
		}
	}
	if err := cqrs.UpsertProjection(ctx, qs, "new", make(chan int)); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("UpsertProjection(chan) = %v, want an error matching nova.ErrInvalid", err)
	}
	if err := cqrs.UpsertProjection(ctx, qs, "new", math.NaN()); !errors.Is(err, nova.ErrInvalid) {
		t.Errorf("UpsertProjection(NaN) = %v, want an error matching nova.ErrInvalid", err)
	}
	wantValue(t, qs, "kept", `{"v":1}`)
	wantMissing(t, qs, "new")
	for _, tt := range tests {
		if querystore.ValidateKey(tt.key) == nil && tt.key != "kept" {
			wantMissing(t, qs, tt.key)
		}
	}
}

func (q *qsuite) testCopies(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	ctx := t.Context()
	in := []byte(`{"name":"first"}`)
	if err := qs.UpsertRaw(ctx, "k", in); err != nil {
		t.Fatalf("UpsertRaw: %v", err)
	}
	copy(in, `{"name":"XXXXX"}`)
	wantValue(t, qs, "k", `{"name":"first"}`)
	got, err := qs.GetRaw(ctx, "k")
	if err != nil {
		t.Fatalf("GetRaw: %v", err)
	}
	for i := range got {
		got[i] = ' '
	}
	wantValue(t, qs, "k", `{"name":"first"}`)
	if again, _ := qs.GetRaw(ctx, "k"); bytes.Equal(again, got) {
		t.Fatalf("GetRaw returned the store's own bytes")
	}
}

func (q *qsuite) testCancel(t *testing.T) {
	t.Parallel()
	qs := q.newStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := qs.UpsertRaw(ctx, "k", json.RawMessage(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("UpsertRaw(cancelled ctx) = %v, want an error matching context.Canceled", err)
	}
	if _, err := qs.GetRaw(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("GetRaw(cancelled ctx) = %v, want an error matching context.Canceled", err)
	}
	wantMissing(t, qs, "k")
}

// TxFunc runs fn in a transaction of the database a SQL query store
// lives in, with a ctx that carries it (the backend's WithTx), and commits
// it when fn returns nil; otherwise it rolls it back and returns fn's
// error.
type TxFunc func(ctx context.Context, t *testing.T, fn func(ctx context.Context) error) error

// SQLQueryOption tunes [RunSQLQueryStore] for one backend.
type SQLQueryOption func(*sqlQueryOptions)

type sqlQueryOptions struct {
	inTx   TxFunc
	cp     projection.CheckpointStore
	events nova.Store
	raw    RawSQL
}

// WithTx gives the suite the backend's transactions. It is required.
func WithTx(f TxFunc) SQLQueryOption {
	return func(o *sqlQueryOptions) { o.inTx = f }
}

// WithCheckpoints gives the suite the backend's checkpoint store on the
// same database. When it is a [projection.Rebuilder], the WithCheckpoints
// case runs.
func WithCheckpoints(cs projection.CheckpointStore) SQLQueryOption {
	return func(o *sqlQueryOptions) { o.cp = cs }
}

// RunSQLQueryStore runs the cases every SQL query store passes beside
// [RunQueryStore], against the stores newStore returns. newStore returns
// a query store on table ("" for the backend's default), creating the
// table, and registers its cleanup with t. Every call within one test (t
// and its parent) must use the same database, schema or file, fresh for
// the test. The cases:
//
//   - Tables: stores on two tables keep apart; a second store on one
//     table sees the first's rows.
//   - InTransaction: inside a transaction's ctx, an upsert is read back
//     by the transaction, is invisible outside it until it commits, and
//     is undone by a rollback; bad input fails without failing the
//     transaction.
//   - RebuildShadow: under a rebuild's ctx (projection.Rebuilding) the
//     store reads and writes its table's shadow (projection.Table), and
//     fails, naming the shadow, when the shadow does not exist.
//
// When the store given to [WithCheckpoints] is a [projection.Rebuilder]:
//
//   - WithCheckpoints: writes in a checkpoint's Commit commit with the
//     checkpoint, or not at all; a rebuild fills the shadow Prepare makes
//     of the store's table, and Swap puts it in place for the store's next
//     reads and writes. The table is named to the Rebuilder by the store's
//     Table method, if it has one.
//   - Batched: inside a projection's batch (a Commit whose ctx carries a
//     projectiondriver.Batch, as the runner gives its handlers) upserts
//     wait in the batch, once per key, and reads see them; the end of the
//     batch writes them in the commit's transaction, more rows than one
//     statement's parameters allow included; a failing batch leaves
//     nothing, flushed or not. A store that is a
//     projectiondriver.Prefetcher reads documents into the batch, and
//     the batch's own writes stay ahead of them. With [WithEventStore], a runner whose
//     handler fails in the middle of a batch leaves exactly the events
//     before it applied, and the model caught up equals its rebuild.
func RunSQLQueryStore(t *testing.T, newStore func(t *testing.T, table string) cqrs.QueryStore, opts ...SQLQueryOption) {
	t.Helper()
	var o sqlQueryOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.inTx == nil {
		t.Fatal("novatest: RunSQLQueryStore needs the backend's transactions: pass WithTx")
	}
	s := sqlQuerySuite{newStore: newStore, inTx: o.inTx, events: o.events, raw: o.raw}
	s.rb, _ = o.cp.(projection.Rebuilder)
	t.Run("Tables", s.testTables)
	t.Run("InTransaction", s.testInTransaction)
	t.Run("RebuildShadow", s.testRebuildShadow)
	t.Run("WithCheckpoints", s.testWithCheckpoints)
	t.Run("Batched", s.testBatched)
}

type sqlQuerySuite struct {
	newStore func(t *testing.T, table string) cqrs.QueryStore
	inTx     TxFunc
	rb       projection.Rebuilder // nil: WithCheckpoints and Batched skip
	events   nova.Store           // nil: Batched/Runner skips
	raw      RawSQL               // zero: Batched/RawSQL skips
}

func (s sqlQuerySuite) testTables(t *testing.T) {
	t.Parallel()
	a, b := s.newStore(t, "views_a"), s.newStore(t, "views_b")
	upsert(t, a, "k", `{"in":"a"}`)
	wantMissing(t, b, "k")
	upsert(t, b, "k", `{"in":"b"}`)
	wantValue(t, a, "k", `{"in":"a"}`)
	wantValue(t, s.newStore(t, "views_a"), "k", `{"in":"a"}`)
}

func (s sqlQuerySuite) testInTransaction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	qs := s.newStore(t, "")
	upsert(t, qs, "kept", `{"v":1}`)
	boom := errors.New("roll back")
	err := s.inTx(ctx, t, func(tx context.Context) error {
		for key, value := range map[string]string{"undone": `{"v":2}`, "kept": `{"v":3}`} {
			if err := qs.UpsertRaw(tx, key, json.RawMessage(value)); err != nil {
				return fmt.Errorf("UpsertRaw(%q) in a transaction: %w", key, err)
			}
			if got, err := qs.GetRaw(tx, key); err != nil || !jsonEqual(got, []byte(value)) {
				t.Errorf("GetRaw(%q) in the transaction = %s, %v; want its own write %s", key, got, err, value)
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("transaction = %v, want its own error", err)
	}
	wantMissing(t, qs, "undone")
	wantValue(t, qs, "kept", `{"v":1}`)

	err = s.inTx(ctx, t, func(tx context.Context) error {
		if err := qs.UpsertRaw(tx, "done", json.RawMessage(`{"v":4}`)); err != nil {
			return err
		}
		if err := qs.UpsertRaw(tx, "kept", json.RawMessage(`{"v":`)); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("bad JSON in a transaction: UpsertRaw = %v, want nova.ErrInvalid", err)
		}
		if err := qs.UpsertRaw(tx, "", json.RawMessage(`1`)); !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("empty key in a transaction: UpsertRaw = %v, want nova.ErrInvalid", err)
		}
		return qs.UpsertRaw(tx, "kept", json.RawMessage(`{"v":5}`))
	})
	if err != nil {
		t.Fatalf("transaction: %v", err)
	}
	wantValue(t, qs, "done", `{"v":4}`)
	wantValue(t, qs, "kept", `{"v":5}`)
}

func (s sqlQuerySuite) testRebuildShadow(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	rebuild := projectiondriver.WithRebuild(ctx)
	qs := s.newStore(t, "rebuilt")
	shadow := "rebuilt" + projectiondriver.ShadowSuffix
	err := qs.UpsertRaw(rebuild, "k", json.RawMessage(`1`))
	if err == nil || !strings.Contains(err.Error(), shadow) {
		t.Fatalf("UpsertRaw under a rebuild with no shadow table: %v, want an error naming %s", err, shadow)
	}
	s.newStore(t, shadow)
	upsert(t, qs, "k", `"live"`)
	for _, key := range []string{"k", "new"} {
		if err := qs.UpsertRaw(rebuild, key, json.RawMessage(`"rebuilt"`)); err != nil {
			t.Fatalf("UpsertRaw(%q) under a rebuild: %v", key, err)
		}
	}
	wantValue(t, qs, "k", `"live"`)
	wantMissing(t, qs, "new")
	for _, key := range []string{"k", "new"} {
		if got, err := qs.GetRaw(rebuild, key); err != nil || !jsonEqual(got, []byte(`"rebuilt"`)) {
			t.Fatalf("GetRaw(%q) under a rebuild = %s, %v; want \"rebuilt\"", key, got, err)
		}
	}
	wantValue(t, s.newStore(t, shadow), "new", `"rebuilt"`)
}

func (s sqlQuerySuite) testWithCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cp := s.rb
	if cp == nil {
		t.Skip("the backend passed no WithCheckpoints, or not a projection.Rebuilder")
	}
	qs := s.newStore(t, "checkpointed")
	at := func(n uint64) nova.Position { return nova.Position{Commit: n} }
	write := func(key, value string) func(ctx context.Context) error {
		return func(ctx context.Context) error { return qs.UpsertRaw(ctx, key, json.RawMessage(value)) }
	}
	if err := cp.Commit(ctx, "qs-checkpointed", "", nova.Start, at(1), write("a", `"one"`)); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	boom := errors.New("boom")
	err := cp.Commit(ctx, "qs-checkpointed", "", at(1), at(2), func(ctx context.Context) error {
		if err := write("a", `"two"`)(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Commit of a failing batch = %v, want its error", err)
	}
	wantValue(t, qs, "a", `"one"`)
	if pos, err := cp.Load(ctx, "qs-checkpointed"); err != nil || pos != at(1) {
		t.Fatalf("checkpoint after a failed batch = %v, %v; want %v", pos, err, at(1))
	}

	// The name the Rebuilder takes: the store's own, when it tells it.
	table := "checkpointed"
	if named, ok := qs.(interface{ Table() string }); ok {
		table = named.Table()
	}
	if err := cp.Prepare(ctx, []string{table}); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	rebuild := projectiondriver.WithRebuild(ctx)
	if err := cp.Commit(rebuild, "qs-checkpointed@rebuild", "", nova.Start, at(2), write("b", `"rebuilt"`)); err != nil {
		t.Fatalf("Commit under a rebuild: %v", err)
	}
	wantMissing(t, qs, "b")
	if err := cp.Swap(ctx, "qs-checkpointed", "qs-checkpointed@rebuild", []string{table}); err != nil {
		t.Fatalf("Swap: %v", err)
	}
	wantValue(t, qs, "b", `"rebuilt"`)
	wantMissing(t, qs, "a") // only the old table had it
	if err := cp.Commit(ctx, "qs-checkpointed", "", at(2), at(3), write("c", `3`)); err != nil {
		t.Fatalf("Commit after the swap: %v", err)
	}
	wantValue(t, qs, "c", `3`)
}
