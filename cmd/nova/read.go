package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"time"

	"github.com/nova-go/nova"
)

func readCommand() *command {
	var backwards bool
	var from uint64
	var limit int
	return &command{
		name:     "read",
		summary:  "print a stream's events",
		usage:    "STREAM [--store PATH|URL] [--json] [--from VERSION] [--limit N] [--backwards]",
		jsonHelp: "print one JSON object per event and line",
		flags: func(fs *flag.FlagSet, e *env) {
			fs.Uint64Var(&from, "from", 0, "first version to print (0: the start, or the end with --backwards)")
			fs.IntVar(&limit, "limit", 0, "print at most N events (0: all)")
			fs.BoolVar(&backwards, "backwards", false, "newest event first")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("read takes one STREAM argument, got %d", len(args))
			}
			opts := nova.ReadStreamOptions{From: from, Limit: limit}
			if backwards {
				opts.Direction = nova.Backwards
			}
			return runRead(ctx, e, args[0], opts)
		},
	}
}

// eventJSON is how `nova read --json` prints an event. Data that is JSON
// is printed as it is; other bytes as a base64 string under data_base64.
type eventJSON struct {
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	Version    uint64          `json:"version"`
	Position   string          `json:"position"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data,omitempty"`
	DataBase64 []byte          `json:"data_base64,omitempty"`
	Metadata   nova.Metadata   `json:"metadata"`
	RecordedAt time.Time       `json:"recorded_at"`
}

func runRead(ctx context.Context, e *env, stream string, opts nova.ReadStreamOptions) error {
	if err := nova.ValidateStream(stream); err != nil {
		return usagef("%v", err)
	}
	store, err := openExistingStore(ctx, e.store)
	if err != nil {
		return err
	}
	defer store.Close()

	enc := json.NewEncoder(e.stdout)
	n := 0
	for ev, err := range store.ReadStream(ctx, stream, opts) {
		if err != nil {
			return err
		}
		n++
		if e.json {
			out := eventJSON{ID: ev.ID, Stream: ev.Stream, Version: ev.Version, Position: ev.Position.String(),
				Type: ev.Type, Metadata: ev.Metadata, RecordedAt: ev.RecordedAt}
			if json.Valid(ev.Data) {
				out.Data = ev.Data
			} else {
				out.DataBase64 = ev.Data
			}
			if err := enc.Encode(out); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(e.stdout, "%4d  %-24s  @%-8s  %s  %s\n", ev.Version, ev.Type, ev.Position,
			ev.RecordedAt.Local().Format("2006-01-02 15:04:05.000"), printable(ev.Data))
	}
	if n == 0 {
		return fmt.Errorf("stream %q has no events in %s", stream, redact(e.store))
	}
	return nil
}

// printable returns data for a one-line listing: JSON as it is, other bytes
// summarised, long values cut.
func printable(data []byte) string {
	const max = 160
	if !json.Valid(data) {
		return fmt.Sprintf("<%d bytes>", len(data))
	}
	if len(data) > max {
		return string(data[:max]) + "…"
	}
	return string(data)
}
