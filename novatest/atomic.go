package novatest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
					MustAppend(t, st, "target", nova.NoStream, Events("prior", 2)...)
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

// testAtomicVisibility has writers append batches of five while readers
// read: no read may ever see part of a batch. A read that ends has reached
// the end of what was committed when it looked, and commits are whole
// batches, so every stream it saw has a multiple of five events, at
// versions 1..n.
func (s *suite) testAtomicVisibility(t *testing.T) {
	t.Parallel()
	st := s.store(t)
	ctx := t.Context()
	const writers, batch = 4, 5
	batches := s.n(200)
	var (
		writing sync.WaitGroup
		reading sync.WaitGroup
		done    = make(chan struct{})
		reads   atomic.Int64
	)
	for w := range writers {
		writing.Go(func() {
			stream := fmt.Sprintf("batched-%d", w)
			for i := range batches {
				if _, err := st.Append(ctx, stream, nova.Exact(uint64(i*batch)), Events("part", batch)...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	check := func(who string, evs []nova.Event, err error) bool {
		if err != nil {
			t.Errorf("%s: %v", who, err)
			return false
		}
		n := map[string]uint64{}
		for i, e := range evs {
			if i > 0 && !evs[i-1].Position.Less(e.Position) {
				t.Errorf("%s: %s follows position %s", who, describe(e), evs[i-1].Position)
				return false
			}
			if e.Version != n[e.Stream]+1 {
				t.Errorf("%s: %s follows version %d of its stream", who, describe(e), n[e.Stream])
				return false
			}
			n[e.Stream] = e.Version
		}
		for stream, v := range n {
			if v%batch != 0 {
				t.Errorf("%s: saw %d events of %q, part of a batch of %d", who, v, stream, batch)
				return false
			}
		}
		reads.Add(1)
		return true
	}
	reading.Go(func() {
		for {
			evs, err := Collect(st.ReadAll(ctx, nova.ReadAllOptions{}), 0)
			if !check("ReadAll", evs, err) {
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	reading.Go(func() {
		for i := 0; ; i++ {
			stream := fmt.Sprintf("batched-%d", i%writers)
			evs, err := Collect(st.ReadStream(ctx, stream, nova.ReadStreamOptions{}), 0)
			if !check("ReadStream", evs, err) {
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	writing.Wait()
	close(done)
	reading.Wait()
	t.Logf("%d writers x %d batches of %d: %d whole reads while writing", writers, batches, batch, reads.Load())
}
