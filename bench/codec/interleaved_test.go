package codec_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/bench/codec"
)

// BenchmarkInterleaved measures each candidate's time relative to
// encoding/json's when a busy machine makes the absolute times of
// BenchmarkEncode, BenchmarkDecode and BenchmarkLoad10k swing by several
// times. One iteration is one round: every candidate, in an order that
// rotates from round to round, runs one short slice of the same work, and
// the round's ratio for a candidate is its slice time over encoding/json's
// in that round. Reported per candidate, as "name/std", is the median of
// the rounds' ratios (below 1 is faster than encoding/json). Run it with a
// fixed number of rounds:
//
//	go test -run '^$' -bench Interleaved -benchtime 200x
func BenchmarkInterleaved(b *testing.B) {
	order := newOrder()
	for _, sc := range []struct {
		name  string
		slice int // ops per slice
		op    func(b *testing.B, c codec.Candidate) func()
	}{
		{"encode-small", 200, encodeOp(Small{N: 42})},
		{"encode-order", 50, encodeOp(order)},
		{"decode-small", 200, decodeOp(b, Small{N: 42})},
		{"decode-order", 50, decodeOp(b, order)},
		{"load-10k", 1, loadOp(b)},
	} {
		b.Run(sc.name, func(b *testing.B) {
			ops := make([]func(), len(codec.Candidates))
			for i, c := range codec.Candidates {
				ops[i] = sc.op(b, c)
				ops[i]() // warm up
			}
			ratios := make([][]float64, len(codec.Candidates))
			took := make([]time.Duration, len(codec.Candidates))
			round := 0
			for b.Loop() {
				for k := range ops {
					i := (k + round) % len(ops)
					start := time.Now()
					for range sc.slice {
						ops[i]()
					}
					took[i] = time.Since(start)
				}
				for i := range ops {
					ratios[i] = append(ratios[i], float64(took[i])/float64(took[0]))
				}
				round++
			}
			for i, c := range codec.Candidates[1:] {
				b.ReportMetric(median(ratios[i+1]), c.Name+"/std")
			}
		})
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func encodeOp(v any) func(*testing.B, codec.Candidate) func() {
	return func(b *testing.B, c codec.Candidate) func() {
		reg := newRegistry(b, c)
		return func() {
			d, err := reg.Encode(v, nova.Metadata{})
			if err != nil {
				b.Fatal(err)
			}
			sink = d
		}
	}
}

func decodeOp(b *testing.B, v any) func(*testing.B, codec.Candidate) func() {
	d, err := newRegistry(b, nova.JSON).Encode(v, nova.Metadata{})
	if err != nil {
		b.Fatal(err)
	}
	e := toEvent(d)
	return func(b *testing.B, c codec.Candidate) func() {
		reg := newRegistry(b, c)
		return func() {
			v, err := reg.Decode(e)
			if err != nil {
				b.Fatal(err)
			}
			sink = v
		}
	}
}

func loadOp(b *testing.B) func(*testing.B, codec.Candidate) func() {
	store := load10kStore(b)
	return func(b *testing.B, c codec.Candidate) func() {
		repo, err := aggregate.NewRepository[Basket](aggregate.Config{Store: store, Registry: newRegistry(b, c), Category: "basket"})
		if err != nil {
			b.Fatal(err)
		}
		return func() {
			root, err := repo.Load(context.Background(), "1")
			if err != nil {
				b.Fatal(err)
			}
			if root.State.Lines != load10k-1 {
				b.Fatalf("loaded %d lines", root.State.Lines)
			}
		}
	}
}
