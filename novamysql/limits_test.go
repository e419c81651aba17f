package novamysql_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
)

// Open reads the server's max_allowed_packet, and an event whose row
// would not fit in it is refused before any I/O with an error matching
// nova.ErrInvalid that names the setting, its value and how to raise it,
// through Append and AppendTx; a batch with one such event writes none.
// (The shared server's setting is not changed: the store is told a
// smaller one, as a server configured so would have.)
func TestEventOverMaxAllowedPacket(t *testing.T) {
	t.Parallel()
	db, _ := admin(t)
	st := open(t, novamysql.Config{})
	var server int64
	if err := db.QueryRowContext(t.Context(), `SELECT @@max_allowed_packet`).Scan(&server); err != nil {
		t.Fatal(err)
	}
	if got := novamysql.MaxPacket(st); got != server {
		t.Fatalf("the store read max_allowed_packet %d, the server has %d", got, server)
	}

	const small = 1 << 20
	novamysql.SetMaxPacket(st, small)
	ctx := t.Context()
	fits := nova.EventData{ID: nova.NewEventID(), Type: "fits", Data: make([]byte, small-4096)}
	over := nova.EventData{ID: nova.NewEventID(), Type: "over", Data: make([]byte, small)}
	check := func(what string, err error, index int) {
		t.Helper()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		for _, want := range []string{"novamysql: ", "max_allowed_packet of " + strconv.Itoa(small), "raise max_allowed_packet", "event " + strconv.Itoa(index)} {
			if !strings.Contains(msg, want) {
				t.Fatalf("%s: %v, want an error matching nova.ErrInvalid containing %q", what, err, want)
			}
		}
		if !errors.Is(err, nova.ErrInvalid) {
			t.Fatalf("%s: %v does not match nova.ErrInvalid", what, err)
		}
	}
	_, err := st.Append(ctx, "s", nova.NoStream, over)
	check("Append", err, 0)
	_, err = st.Append(ctx, "s", nova.NoStream, fits, over)
	check("Append of a batch", err, 1)
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.AppendTx(ctx, tx, "s", nova.NoStream, over)
	check("AppendTx", err, 0)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if evs := novatest.MustReadAll(t, st); len(evs) != 0 {
		t.Fatalf("refused appends wrote %d events", len(evs))
	}
	if _, err := st.Append(ctx, "s", nova.NoStream, fits); err != nil {
		t.Fatalf("append of an event that fits: %v", err)
	}
}
