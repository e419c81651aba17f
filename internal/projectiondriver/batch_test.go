package projectiondriver_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/nova-go/nova/internal/projectiondriver"
)

func TestBatchReadsItsWritesAndFlushesOncePerKey(t *testing.T) {
	ctx := context.Background()
	if projectiondriver.BatchFrom(ctx) != nil {
		t.Fatal("a batch in a plain ctx")
	}
	b := projectiondriver.NewBatch()
	ctx = projectiondriver.WithBatch(ctx, b)
	if projectiondriver.BatchFrom(ctx) != b {
		t.Fatal("BatchFrom does not return the batch WithBatch put in")
	}
	var flushed [][]projectiondriver.Row
	flush := func(_ context.Context, rows []projectiondriver.Row) error {
		flushed = append(flushed, append([]projectiondriver.Row(nil), rows...))
		return nil
	}
	tb := b.Table("t", flush)
	if b.Table("t", nil) != tb {
		t.Fatal("a second Table call made another buffer")
	}
	if _, _, known := tb.Get("a"); known {
		t.Fatal("an unknown key is known")
	}
	tb.Loaded("a", "", false)
	if _, found, known := tb.Get("a"); !known || found {
		t.Fatalf("a key loaded as missing: found %v, known %v", found, known)
	}
	tb.Put("b", "1")
	tb.Put("a", "2")
	tb.Put("b", "3")
	tb.Loaded("b", "old", true) // the database's value is older than the batch's
	if v, found, known := tb.Get("b"); v != "3" || !found || !known {
		t.Fatalf("Get(b) = %q, %v, %v; want the last write", v, found, known)
	}
	if b.Pending() != 2 {
		t.Fatalf("Pending = %d, want 2", b.Pending())
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := [][]projectiondriver.Row{{{Key: "a", Value: "2"}, {Key: "b", Value: "3"}}} // in key order
	if !reflect.DeepEqual(flushed, want) {
		t.Fatalf("flushed %v, want %v", flushed, want)
	}
	if _, _, known := tb.Get("b"); known || b.Pending() != 0 {
		t.Fatal("the batch remembers documents after a flush")
	}
	if err := b.Flush(ctx); err != nil || len(flushed) != 1 {
		t.Fatalf("an empty flush: %v, %d flushes", err, len(flushed))
	}
}

func TestBatchFlushErrorSticks(t *testing.T) {
	ctx := context.Background()
	b := projectiondriver.NewBatch()
	boom := errors.New("boom")
	calls := 0
	b.Table("t", func(context.Context, []projectiondriver.Row) error { calls++; return boom }).Put("k", "1")
	for range 2 {
		err := b.Flush(ctx)
		if !errors.Is(err, boom) || !projectiondriver.IsFlushError(err) {
			t.Fatalf("Flush = %v, want a flush error wrapping boom", err)
		}
	}
	if calls != 1 {
		t.Fatalf("the failing flush ran %d times, want 1", calls)
	}
	if projectiondriver.IsFlushError(boom) {
		t.Fatal("IsFlushError(boom)")
	}
}

func TestChunks(t *testing.T) {
	rows := make([]projectiondriver.Row, 10)
	for i := range rows {
		rows[i] = projectiondriver.Row{Key: fmt.Sprint(i), Value: "xxxx"} // 5 bytes
	}
	sizes := func(cs [][]projectiondriver.Row) (out []int) {
		for _, c := range cs {
			out = append(out, len(c))
		}
		return out
	}
	for _, tc := range []struct {
		maxRows, maxBytes int
		want              []int
	}{
		{100, 1 << 20, []int{10}},
		{4, 1 << 20, []int{4, 4, 2}},
		{100, 12, []int{2, 2, 2, 2, 2}},
		{100, 1, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}, // a row larger than the limit goes alone
	} {
		if got := sizes(projectiondriver.Chunks(rows, tc.maxRows, tc.maxBytes)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Chunks(10 rows, %d, %d) = %v, want %v", tc.maxRows, tc.maxBytes, got, tc.want)
		}
	}
	if got := projectiondriver.Chunks(nil, 1, 1); len(got) != 0 {
		t.Errorf("Chunks(nil) = %v", got)
	}
}
