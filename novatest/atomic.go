package novatest

import (
	"errors"
	"strings"
	"testing"

	"github.com/nova-go/nova"
)

// testAtomicBatch appends batches in which one event is bad, to a new
// stream and to an existing one: the whole batch must be refused and
// nothing of it written.
func (s *suite) testAtomicBatch(t *testing.T) {
	t.Parallel()
	stored := NewEventData("stored", `{}`)
	tests := []struct {
		name    string
		bad     func() nova.EventData // the event put in the middle of a valid batch
		wantErr error
	}{
		{"empty type", func() nova.EventData { return nova.EventData{ID: nova.NewEventID(), Data: []byte(`{}`)} }, nova.ErrInvalid},
		{"malformed ID", func() nova.EventData { return nova.EventData{ID: "not-a-uuid", Type: "t"} }, nova.ErrInvalid},
		{"invalid UTF-8 type", func() nova.EventData { return nova.EventData{ID: nova.NewEventID(), Type: "bad\xff"} }, nova.ErrInvalid},
		{"oversize data", func() nova.EventData {
			return nova.EventData{ID: nova.NewEventID(), Type: "t", Data: []byte(strings.Repeat("x", nova.MaxDataLen+1))}
		}, nova.ErrInvalid},
		{"ID stored in another stream", func() nova.EventData { return stored }, nova.ErrDuplicateEvent},
	}
	for _, tc := range tests {
		for _, existing := range []bool{false, true} {
			name := tc.name + "/new stream"
			if existing {
				name = tc.name + "/existing stream"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				st := s.store(t)
				ctx := s.ctx(t)
				MustAppend(t, st, "elsewhere", nova.NoStream, stored)
				expected := nova.NoStream
				if existing {
					MustAppend(t, st, "target", nova.NoStream, Events("seed", 2)...)
					expected = nova.Exact(2)
				}
				before := stateOf(t, st)
				batch := append(Events("good", 2), tc.bad())
				batch = append(batch, Events("good", 2)...)
				for _, exp := range []nova.ExpectedVersion{expected, nova.Any} {
					_, err := st.Append(ctx, "target", exp, batch...)
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("Append(expected %s) of a batch with one bad event (%s): got %v, want an error matching %v", exp, tc.name, err, tc.wantErr)
					}
					unchanged(t, st, before, "a refused batch")
				}
			})
		}
	}
}
