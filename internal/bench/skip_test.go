package bench_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/bench"
	"github.com/nova-go/nova/novamem"
)

// singleEventStore refuses appends of several events, as a JetStream
// server without atomic batches does.
type singleEventStore struct{ *novamem.Store }

func (s singleEventStore) Append(ctx context.Context, stream string, expected nova.ExpectedVersion, events ...nova.EventData) (nova.AppendResult, error) {
	if len(events) > 1 {
		return nova.AppendResult{}, fmt.Errorf("test store: %d events at once: %w", len(events), nova.ErrNotImplemented)
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

func TestRunSkipsScenariosTheBackendCannotRun(t *testing.T) {
	t.Parallel()
	b := bench.Memory()
	b.NovaFunc = func(context.Context) (nova.Store, func() error, error) {
		s, err := novamem.New(novamem.Config{})
		if err != nil {
			return nil, nil, err
		}
		return singleEventStore{s}, s.Close, nil
	}
	var progress bytes.Buffer
	opts := bench.Options{Scenarios: []string{"append-1", "append-100"}, Runs: 1, Warmup: -1, Scale: 0.01, Progress: &progress}
	results, err := bench.Run(context.Background(), b, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 1 || results[0].Scenario != "append-1" {
		t.Fatalf("results = %+v, want append-1 alone", results)
	}
	if !strings.Contains(progress.String(), "skipped append-100") {
		t.Errorf("progress does not report the skipped scenario:\n%s", progress.String())
	}

	// Every scenario skipped: an error, not an empty success.
	opts.Scenarios = []string{"append-100"}
	if _, err := bench.Run(context.Background(), b, opts); !errors.Is(err, nova.ErrNotImplemented) {
		t.Errorf("Run with every scenario skipped: err = %v, want nova.ErrNotImplemented", err)
	}
}
