package novamysql_test

import (
	"bytes"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novatest"
)

// TestLargeEventsPage reads events so large that a page is cut by the
// bytes it holds rather than by its row count: every read path must still
// return every event once, in order.
func TestLargeEventsPage(t *testing.T) {
	t.Parallel()
	s := open(t, novamysql.Config{})
	const n, size = 5, 6 << 20
	evs := novatest.Events("large", n)
	for i := range evs {
		evs[i].Data = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	novatest.MustAppend(t, s, "large", nova.NoStream, evs...)
	novatest.MustAppend(t, s, "small", nova.NoStream, novatest.Events("small", 3)...)
	check := func(what string, got []nova.Event, want []nova.EventData) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s returned %d events, want %d", what, len(got), len(want))
		}
		for i := range got {
			if !validate.SameContent(got[i], want[i]) {
				t.Fatalf("%s: event %d differs from the one appended", what, i)
			}
		}
	}
	check("ReadStream", novatest.MustReadStream(t, s, "large", nova.ReadStreamOptions{}), evs)
	back := novatest.MustReadStream(t, s, "large", nova.ReadStreamOptions{Direction: nova.Backwards})
	for i, j := 0, len(back)-1; i < j; i, j = i+1, j-1 {
		back[i], back[j] = back[j], back[i]
	}
	check("ReadStream backwards", back, evs)
	all := novatest.MustReadAll(t, s)
	if len(all) != n+3 {
		t.Fatalf("ReadAll returned %d events, want %d", len(all), n+3)
	}
	check("ReadAll", all[:n], evs)
}
