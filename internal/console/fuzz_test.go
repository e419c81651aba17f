package console_test

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/nova-go/nova/internal/console"
)

// The parsers of query strings never panic, accept only values in range,
// and read back what their Encode writes.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "limit=10", "prefix=order-&after=order-9", "from=3&dir=backwards", "after=12/4&limit=1000",
		"saga=fulfil&status=stuck&after_saga=fulfil&after_run=00002", "limit=0", "limit=%2B1", "after=18446744073709551616",
		"dir=up", "status=done", "prefix=%00", "limit=1&limit=2", "after_saga=a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		if s, err := console.ParseStreamsQuery(q); err == nil {
			if s.Limit < 1 || s.Limit > console.MaxLimit || (s.After != "" && !strings.HasPrefix(s.After, s.Prefix)) {
				t.Fatalf("streams %q accepted as %+v", raw, s)
			}
			back, err := url.ParseQuery(s.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if s2, err := console.ParseStreamsQuery(back); err != nil || s2 != s {
				t.Fatalf("streams %+v encoded as %q reads back as %+v, %v", s, s.Encode(), s2, err)
			}
		}
		if e, err := console.ParseEventsQuery(q); err == nil {
			if e.Limit < 1 || e.Limit > console.MaxLimit {
				t.Fatalf("events %q accepted as %+v", raw, e)
			}
			back, _ := url.ParseQuery(e.Encode())
			if e2, err := console.ParseEventsQuery(back); err != nil || e2 != e {
				t.Fatalf("events %+v reads back as %+v, %v", e, e2, err)
			}
		}
		if l, err := console.ParseLogQuery(q); err == nil {
			if l.Limit < 1 || l.Limit > console.MaxLimit {
				t.Fatalf("log %q accepted as %+v", raw, l)
			}
			back, _ := url.ParseQuery(l.Encode())
			if l2, err := console.ParseLogQuery(back); err != nil || l2 != l {
				t.Fatalf("log %+v reads back as %+v, %v", l, l2, err)
			}
		}
		if s, err := console.ParseSagasQuery(q); err == nil {
			if s.Limit < 1 || s.Limit > console.MaxLimit || (s.AfterSaga == "") != (s.AfterRun == "") {
				t.Fatalf("sagas %q accepted as %+v", raw, s)
			}
			back, _ := url.ParseQuery(s.Encode())
			if s2, err := console.ParseSagasQuery(back); err != nil || s2 != s {
				t.Fatalf("sagas %+v reads back as %+v, %v", s, s2, err)
			}
		}
	})
}

// An action body is accepted only when it is one JSON object with a known
// action, an actor and, for skip and abandon, a reason.
func FuzzDecodeAction(f *testing.F) {
	for _, s := range []string{`{"action":"retry","actor":"a"}`, `{"action":"skip","reason":"r","actor":"a"}`,
		`{"action":"abandon","actor":"a"}`, `{}`, `[]`, `{"action":"retry","actor":"a"} x`, `{"action":"retry","actor":"a","x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := console.DecodeAction(bytes.NewReader(body))
		if err != nil {
			return
		}
		if a.Check() != nil || strings.TrimSpace(a.Actor) == "" || (a.Action != "retry" && strings.TrimSpace(a.Reason) == "") {
			t.Fatalf("%q accepted as %+v", body, a)
		}
	})
}
