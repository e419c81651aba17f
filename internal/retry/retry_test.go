package retry_test

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	idX   = "0190a0b0-0000-7000-8000-00000000000a" // order-1 v1
	idY   = "0190a0b0-0000-7000-8000-00000000000b" // order-1 v2
	idA   = "0190a0b0-0000-7000-8000-000000000001" // order-1 v3
	idB   = "0190a0b0-0000-7000-8000-000000000002" // order-1 v4
	idC   = "0190a0b0-0000-7000-8000-000000000003" // order-1 v5
	idZ   = "0190a0b0-0000-7000-8000-000000000026" // order-2 v1
	idNew = "0190a0b0-0000-7000-8000-0000000000ff" // not stored
)

func data(id string) nova.EventData {
	return nova.EventData{
		ID: id, Type: "order.placed", Data: []byte(`{"id":"` + id[len(id)-2:] + `"}`),
		Metadata: nova.Metadata{CorrelationID: "corr", Extra: map[string]string{"k": "v"}},
	}
}

// stored is what the store holds: order-1 at versions 1..5 (X Y A B C)
// and order-2 at version 1 (Z).
func stored() map[string]nova.Event {
	m := map[string]nova.Event{}
	put := func(stream, id string, version, pos uint64) {
		d := data(id)
		m[id] = nova.Event{
			ID: id, Stream: stream, Type: d.Type, Version: version,
			Position: nova.Position{Commit: pos}, Data: d.Data,
			// As recorded: schema stamped, Extra round-tripped.
			Metadata: nova.Metadata{CorrelationID: d.Metadata.CorrelationID, Schema: 1, Extra: map[string]string{"k": "v"}},
		}
	}
	put("order-1", idX, 1, 10)
	put("order-1", idY, 2, 11)
	put("order-1", idA, 3, 20)
	put("order-1", idB, 4, 21)
	put("order-1", idC, 5, 22)
	put("order-2", idZ, 1, 30)
	return m
}

func batch(ids ...string) []nova.EventData {
	out := make([]nova.EventData, len(ids))
	for i, id := range ids {
		out[i] = data(id)
	}
	return out
}

func TestCheckRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		expected nova.ExpectedVersion
		events   []nova.EventData
		want     nova.AppendResult
	}{
		{"exact", nova.Exact(2), batch(idA, idB, idC), nova.AppendResult{FirstVersion: 3, LastVersion: 5, Position: nova.Position{Commit: 22}, Duplicate: true}},
		{"exact, one event", nova.Exact(3), batch(idB), nova.AppendResult{FirstVersion: 4, LastVersion: 4, Position: nova.Position{Commit: 21}, Duplicate: true}},
		{"exact, prefix of what was stored", nova.Exact(2), batch(idA, idB), nova.AppendResult{FirstVersion: 3, LastVersion: 4, Position: nova.Position{Commit: 21}, Duplicate: true}},
		{"no stream", nova.NoStream, batch(idX, idY), nova.AppendResult{FirstVersion: 1, LastVersion: 2, Position: nova.Position{Commit: 11}, Duplicate: true}},
		{"exact 0", nova.Exact(0), batch(idX), nova.AppendResult{FirstVersion: 1, LastVersion: 1, Position: nova.Position{Commit: 10}, Duplicate: true}},
		{"any", nova.Any, batch(idB, idC), nova.AppendResult{FirstVersion: 4, LastVersion: 5, Position: nova.Position{Commit: 22}, Duplicate: true}},
		{"stream exists", nova.StreamExists, batch(idA), nova.AppendResult{FirstVersion: 3, LastVersion: 3, Position: nova.Position{Commit: 20}, Duplicate: true}},
		{"schema 0 is schema 1", nova.Exact(2), func() []nova.EventData {
			b := batch(idA)
			b[0].Metadata.Schema = 0
			return b
		}(), nova.AppendResult{FirstVersion: 3, LastVersion: 3, Position: nova.Position{Commit: 20}, Duplicate: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := retry.Check("order-1", tt.expected, tt.events, stored())
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Check = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCheckNilExtraIsEmptyExtra(t *testing.T) {
	t.Parallel()
	found := stored()
	a := found[idA]
	a.Metadata.Extra = nil // as a backend that drops empty maps returns it
	found[idA] = a
	d := data(idA)
	d.Metadata.Extra = map[string]string{}
	got, err := retry.Check("order-1", nova.Exact(2), []nova.EventData{d}, found)
	if err != nil || !got.Duplicate || got.FirstVersion != 3 {
		t.Fatalf("Check with nil vs empty Extra = %+v, %v, want a retry at version 3", got, err)
	}
}

func TestCheckDuplicate(t *testing.T) {
	t.Parallel()
	with := func(id string, f func(*nova.EventData)) nova.EventData {
		d := data(id)
		f(&d)
		return d
	}
	tests := []struct {
		name          string
		stream        string
		expected      nova.ExpectedVersion
		events        []nova.EventData
		wantID        string
		storedStream  string
		storedVersion uint64
	}{
		{"different data", "order-1", nova.Exact(2),
			[]nova.EventData{with(idA, func(d *nova.EventData) { d.Data = []byte(`{}`) }), data(idB)}, idA, "order-1", 3},
		{"different type", "order-1", nova.Any,
			[]nova.EventData{data(idA), with(idB, func(d *nova.EventData) { d.Type = "order.cancelled" })}, idB, "order-1", 4},
		{"different metadata", "order-1", nova.Any,
			[]nova.EventData{with(idA, func(d *nova.EventData) { d.Metadata.CausationID = "other" })}, idA, "order-1", 3},
		{"different extra", "order-1", nova.Any,
			[]nova.EventData{with(idA, func(d *nova.EventData) { d.Metadata.Extra = nil })}, idA, "order-1", 3},
		{"different schema", "order-1", nova.Any,
			[]nova.EventData{with(idA, func(d *nova.EventData) { d.Metadata.Schema = 2 })}, idA, "order-1", 3},
		{"different stream", "order-9", nova.Exact(2), batch(idA, idB), idA, "order-1", 3},
		{"one of the batch in another stream", "order-1", nova.Exact(2), batch(idA, idZ), idZ, "order-2", 1},
		{"wrong place for exact", "order-1", nova.Exact(3), batch(idA, idB), idA, "order-1", 3},
		{"wrong place for exact, later", "order-1", nova.Exact(1), batch(idA), idA, "order-1", 3},
		{"wrong place for no stream", "order-1", nova.NoStream, batch(idA), idA, "order-1", 3},
		{"wrong place for exact 0", "order-1", nova.Exact(0), batch(idB), idB, "order-1", 4},
		{"partial overlap, new event last", "order-1", nova.Exact(2), batch(idA, idB, idNew), idA, "order-1", 3},
		{"partial overlap, new event first", "order-1", nova.Any, batch(idNew, idB), idB, "order-1", 4},
		{"partial overlap, new event between", "order-1", nova.Any, batch(idB, idNew, idC), idB, "order-1", 4},
		{"out of order", "order-1", nova.Any, batch(idB, idA), idA, "order-1", 3},
		{"out of order, exact", "order-1", nova.Exact(2), batch(idA, idC, idB), idC, "order-1", 5},
		{"gap", "order-1", nova.Any, batch(idA, idC), idC, "order-1", 5},
		{"same event twice", "order-1", nova.Any, batch(idA, idA), idA, "order-1", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := retry.Check(tt.stream, tt.expected, tt.events, stored())
			if !errors.Is(err, nova.ErrDuplicateEvent) {
				t.Fatalf("Check = %+v, %v, want an error matching ErrDuplicateEvent", got, err)
			}
			if errors.Is(err, nova.ErrConcurrency) {
				t.Errorf("error %v also matches ErrConcurrency", err)
			}
			if got != (nova.AppendResult{}) {
				t.Errorf("Check returned %+v with its error, want the zero result", got)
			}
			var de *nova.DuplicateEventError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *nova.DuplicateEventError", err)
			}
			want := nova.DuplicateEventError{ID: tt.wantID, Stream: tt.stream, StoredStream: tt.storedStream, StoredVersion: tt.storedVersion}
			if *de != want {
				t.Errorf("error = %+v, want %+v", *de, want)
			}
		})
	}
}
