package aggregate_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/aggregate"
	"github.com/nova-go/nova/novamem"
)

// BenchmarkLoadLong loads a 10,000-event aggregate of 1 KB events,
// decoding on the caller's goroutine alone and ahead on GOMAXPROCS.
func BenchmarkLoadLong(b *testing.B) {
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	reg := newRegistry(b)
	ctx := b.Context()
	note := strings.Repeat("x", 1000)
	vs := make([]any, 10000)
	for i := range vs {
		vs[i] = Opened{Owner: note} // 1 KB of JSON
	}
	for chunk := range slices.Chunk(vs, 1000) {
		evs, err := reg.EncodeAll(nova.Metadata{}, chunk...)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := store.Append(ctx, "account-1", nova.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	for _, decoders := range []int{1, 0} {
		name := "decoders=1"
		if decoders == 0 {
			name = "decoders=gomaxprocs"
		}
		b.Run(name, func(b *testing.B) {
			repo, err := aggregate.NewRepository[Account](aggregate.Config{Store: store, Registry: reg, Category: "account", LoadDecoders: decoders})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				root, err := repo.Load(ctx, "1")
				if err != nil {
					b.Fatal(err)
				}
				if root.Version != 10000 {
					b.Fatalf("version %d", root.Version)
				}
			}
			b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLoad loads an aggregate of 1,000 events from novamem, replaying
// them all or starting from a snapshot taken every 100 events.
func BenchmarkLoad(b *testing.B) {
	for _, every := range []int{0, 100} {
		b.Run(fmt.Sprintf("snapshot-every=%d", every), func(b *testing.B) {
			store, err := novamem.New(novamem.Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			cfg := aggregate.Config{Store: store, Registry: newRegistry(b), Category: "account"}
			if every > 0 {
				cfg.Snapshots, cfg.SnapshotEvery = store, every
			}
			repo, err := aggregate.NewRepository[Account](cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			root, err := repo.New("1")
			if err != nil {
				b.Fatal(err)
			}
			for i := range 1000 {
				e := any(Deposited{Amount: 1})
				if i == 0 {
					e = Opened{Owner: "ada"}
				}
				if _, err := repo.Save(ctx, root, []any{e}, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := repo.Load(ctx, "1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpdate handles one command per iteration against one
// aggregate: load, decide, save.
func BenchmarkUpdate(b *testing.B) {
	store, err := novamem.New(novamem.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	repo, err := aggregate.NewRepository[Account](aggregate.Config{Store: store, Registry: newRegistry(b), Snapshots: store, SnapshotEvery: 50})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	for b.Loop() {
		if _, err := repo.Update(ctx, "1", func(a *Account) ([]any, error) { return a.Deposit(1) }, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSave saves 100 events per iteration to a fresh aggregate, beside
// a direct Append of the same values encoded by the same registry: the
// work a caller does without a repository.
func BenchmarkSave(b *testing.B) {
	events := make([]any, 100)
	events[0] = Opened{Owner: "ada"}
	for i := 1; i < len(events); i++ {
		events[i] = Deposited{Amount: int64(i)}
	}
	b.Run("repository", func(b *testing.B) {
		store, err := novamem.New(novamem.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		repo, err := aggregate.NewRepository[Account](aggregate.Config{Store: store, Registry: newRegistry(b), Category: "account"})
		if err != nil {
			b.Fatal(err)
		}
		ctx := b.Context()
		n := 0
		for b.Loop() {
			n++
			root, err := repo.New(fmt.Sprint(n))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := repo.Save(ctx, root, events, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		store, err := novamem.New(novamem.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		reg := newRegistry(b)
		ctx := b.Context()
		n := 0
		for b.Loop() {
			n++
			data, err := reg.EncodeAll(nova.Metadata{}, events...)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := store.Append(ctx, "account-"+fmt.Sprint(n), nova.NoStream, data...); err != nil {
				b.Fatal(err)
			}
		}
	})
}
