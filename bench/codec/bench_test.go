package codec_test

import (
	"fmt"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/bench/codec"
	"github.com/nova-go/nova/novamem"
)

// The benchmarks run each candidate in turn under one parent, so that
// benchstat -col /codec compares them with encoding/json ("std"):
//
//	go test -run '^$' -bench . -benchmem -count 6 | tee codec.txt
//	benchstat -col /codec codec.txt
//
// Allocations are exact whatever the machine does. On a busy machine the
// times are not: take ratios from BenchmarkInterleaved instead.

func newRegistry(tb testing.TB, c nova.Codec) *nova.Registry {
	tb.Helper()
	reg := nova.NewRegistry(nova.RegistryOptions{Codec: c})
	for _, err := range []error{
		nova.Register[Small](reg, "small"),
		nova.Register[OrderPlaced](reg, "order.placed"),
		nova.Register[LineAdded](reg, "line.added"),
	} {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return reg
}

// toEvent makes the event a store would return for d.
func toEvent(d nova.EventData) nova.Event {
	return nova.Event{ID: d.ID, Stream: "s", Type: d.Type, Version: 1, Data: d.Data, Metadata: d.Metadata}
}

var sink any

// BenchmarkEncode encodes one event per op through Registry.Encode.
func BenchmarkEncode(b *testing.B) {
	for _, ev := range []struct {
		name string
		v    any
	}{{"small", Small{N: 42}}, {"order", newOrder()}} {
		for _, c := range codec.Candidates {
			b.Run(fmt.Sprintf("event=%s/codec=%s", ev.name, c.Name), func(b *testing.B) {
				reg := newRegistry(b, c)
				d, err := reg.Encode(ev.v, nova.Metadata{})
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(d.Data)))
				for b.Loop() {
					d, err := reg.Encode(ev.v, nova.Metadata{})
					if err != nil {
						b.Fatal(err)
					}
					sink = d
				}
			})
		}
	}
}

// BenchmarkDecode decodes one event per op through Registry.Decode. The
// data is encoding/json's, the same for every candidate.
func BenchmarkDecode(b *testing.B) {
	for _, ev := range []struct {
		name string
		v    any
	}{{"small", Small{N: 42}}, {"order", newOrder()}} {
		d, err := newRegistry(b, nova.JSON).Encode(ev.v, nova.Metadata{})
		if err != nil {
			b.Fatal(err)
		}
		e := toEvent(d)
		for _, c := range codec.Candidates {
			b.Run(fmt.Sprintf("event=%s/codec=%s", ev.name, c.Name), func(b *testing.B) {
				reg := newRegistry(b, c)
				b.SetBytes(int64(len(e.Data)))
				for b.Loop() {
					v, err := reg.Decode(e)
					if err != nil {
						b.Fatal(err)
					}
					sink = v
				}
			})
		}
	}
}

// BenchmarkLoad10k loads an aggregate of 10,000 events (one OrderPlaced,
// then LineAdded events) from novamem through aggregate.Repository, with
// no snapshots: one op decodes all 10,000 events.
func BenchmarkLoad10k(b *testing.B) {
	const n = load10k
	store := load10kStore(b)
	for _, c := range codec.Candidates {
		b.Run("codec="+c.Name, func(b *testing.B) {
			repo, err := aggregate.NewRepository[Basket](aggregate.Config{Store: store, Registry: newRegistry(b, c), Category: "basket"})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				root, err := repo.Load(b.Context(), "1")
				if err != nil {
					b.Fatal(err)
				}
				if root.Version != n || root.State.Lines != n-1 {
					b.Fatalf("loaded version %d with %d lines", root.Version, root.State.Lines)
				}
			}
		})
	}
}

// load10k is the number of events of the load benchmarks.
const load10k = 10_000

// load10kStore returns a novamem store holding stream "basket-1" of
// load10k events encoded by encoding/json: one OrderPlaced, then LineAdded
// events. The benchmark closes it.
func load10kStore(b *testing.B) *novamem.Store {
	std := newRegistry(b, nova.JSON)
	batch := make([]nova.EventData, 0, load10k)
	for i := range load10k {
		v := any(LineAdded{SKU: fmt.Sprintf("SKU-%06d", i), Qty: 1 + i%5, PriceCents: int64(100 + i%900), Note: "gift wrap"})
		if i == 0 {
			v = newOrder()
		}
		d, err := std.Encode(v, nova.Metadata{CorrelationID: "c-1"})
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, d)
	}
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if _, err := store.Append(b.Context(), "basket-1", nova.NoStream, batch...); err != nil {
		b.Fatal(err)
	}
	return store
}
