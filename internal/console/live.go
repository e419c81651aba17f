package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/nova-go/nova"
)

// live streams the global log as server-sent events, from just after
// ?after= (or the Last-Event-ID a reconnecting browser sends), following
// new appends (Store.Subscribe). Each event is one "message" whose id is
// its position and whose data is its JSON (as in /api/log). It ends when
// the client goes away or the console closes.
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		q.Set("after", id)
	}
	lq, err := ParseLogQuery(q)
	if err == nil && lq.Latest {
		err = badf("after: give the position to follow from (0 for the start)")
	}
	if err != nil {
		status, msg := c.status(err)
		writeJSON(w, status, errorJSON{Error: msg})
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, errorJSON{Error: "console: streaming unsupported"})
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel) // the console closes: end the stream
	defer stop()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n: following after %s\n\n", lq.After)
	flusher.Flush()

	// A comment every 15 s keeps proxies from closing an idle stream and
	// finds a client that has gone.
	events := make(chan nova.Event)
	errc := make(chan error, 1)
	go func() {
		defer close(events)
		for e, err := range c.cfg.Store.Subscribe(ctx, nova.SubscribeOptions{From: lq.After}) {
			if err != nil {
				errc <- err
				return
			}
			select {
			case events <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		cancel()
		for range events { // wait for the subscription's goroutine
		}
	}()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				select {
				case err := <-errc:
					if ctx.Err() == nil {
						fmt.Fprintf(w, "event: error\ndata: %s\n\n", jsonString(c.cfg.HideFunc(err.Error())))
						flusher.Flush()
					}
				default:
				}
				return
			}
			b, err := json.Marshal(eventJSON(e))
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "id: %s\ndata: %s\n\n", e.Position, b); err != nil {
				return
			}
			flusher.Flush()
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			flusher.Flush()
		case <-ctx.Done():
			return
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
