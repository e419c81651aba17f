package novamysql_test

import (
	"context"
	"testing"
	"time"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
)

// TestReadersWaitAtAHole: positions are dense, so a position missing
// below a visible one is an event not yet in the reader's snapshot. A
// subscription and a ReadAll deliver what is before it, wait, and go on
// once it appears; neither skips it. The hole is made by moving an event's
// row aside and back.
func TestReadersWaitAtAHole(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, dsn := scratchDB(t)
	s := open(t, novamysql.Config{DSN: dsn, PollInterval: 20 * time.Millisecond})
	for i := range 3 {
		if _, err := s.Append(ctx, "hole", nova.Exact(uint64(i)), nova.EventData{Type: "t", Data: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	db, _ := admin(t)
	exec := func(q string) {
		t.Helper()
		var err error
		adminDo(func() { _, err = db.ExecContext(ctx, q) })
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE " + name + ".aside AS SELECT * FROM " + name + ".nova_events WHERE position = 2")
	exec("DELETE FROM " + name + ".nova_events WHERE position = 2")

	type got struct {
		pos uint64
		err error
	}
	read := func(seq func(func(nova.Event, error) bool)) <-chan got {
		out := make(chan got, 8)
		go func() {
			defer close(out)
			for e, err := range seq {
				out <- got{e.Position.Commit, err}
				if err != nil || e.Position.Commit == 3 {
					return
				}
			}
		}()
		return out
	}
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	sub := read(s.Subscribe(subCtx, nova.SubscribeOptions{}))
	all := read(s.ReadAll(ctx, nova.ReadAllOptions{}))

	for name, ch := range map[string]<-chan got{"Subscribe": sub, "ReadAll": all} {
		if g := <-ch; g.err != nil || g.pos != 1 {
			t.Fatalf("%s first = %+v, want position 1", name, g)
		}
	}
	// Both stay at the hole.
	select {
	case g := <-sub:
		t.Fatalf("Subscribe went past the hole: %+v", g)
	case g := <-all:
		t.Fatalf("ReadAll went past the hole: %+v", g)
	case <-time.After(300 * time.Millisecond):
	}

	exec("INSERT INTO " + name + ".nova_events SELECT * FROM " + name + ".aside")
	for name, ch := range map[string]<-chan got{"Subscribe": sub, "ReadAll": all} {
		for _, want := range []uint64{2, 3} {
			if g := <-ch; g.err != nil || g.pos != want {
				t.Fatalf("%s after the hole filled = %+v, want position %d", name, g, want)
			}
		}
	}
}
