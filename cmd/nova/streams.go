package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/nova-go/nova"
)

func streamsCommand() *command {
	return &command{
		name:     "streams",
		summary:  "list the store's streams with their versions",
		usage:    "[--store PATH|URL] [--json]",
		jsonHelp: "print one JSON object per line: {\"stream\", \"version\"}",
		run:      runStreams,
	}
}

func runStreams(ctx context.Context, e *env, args []string) error {
	if len(args) != 0 {
		return usagef("streams takes no arguments, got %q", args)
	}
	store, err := openExistingStore(ctx, e.store)
	if err != nil {
		return err
	}
	defer store.Close()

	enc := json.NewEncoder(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if !e.json {
		fmt.Fprintln(tw, "STREAM\tVERSION")
	}
	n := 0
	for info, err := range store.Streams(ctx, nova.StreamsOptions{}) {
		if err != nil {
			return err
		}
		n++
		if e.json {
			if err := enc.Encode(struct {
				Stream  string `json:"stream"`
				Version uint64 `json:"version"`
			}{info.Stream, info.Version}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\n", info.Stream, info.Version)
	}
	if e.json {
		return nil
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s in %s\n", plural(n, "stream", ""), redact(e.store))
	return nil
}
