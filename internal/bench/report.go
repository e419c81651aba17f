package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// WriteTable writes results as an aligned table with a header: scenario,
// backend, the nova and raw medians per second, their ratio, the number of
// runs and what the rates count (events, sagas or envelopes). A scenario
// without a raw side shows "-" for it and its ratio; a saga-procs result
// names its number of worker processes and its speed-up beside the
// scenario, a relay result its outbox beside the backend.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tbackend\tnova/s\traw/s\tratio\truns\tunit\t")
	for _, r := range results {
		raw, ratio := group(r.RawPerSec), fmt.Sprintf("%.2f", r.Ratio)
		if r.RawPerSec == 0 {
			raw, ratio = "-", "-"
		}
		scenario := r.Scenario
		if r.Procs > 0 {
			scenario = fmt.Sprintf("%s (%d procs)", r.Scenario, r.Procs)
			if r.Speedup > 0 {
				scenario = fmt.Sprintf("%s (%d procs, speed-up %.2f)", r.Scenario, r.Procs, r.Speedup)
			}
		}
		backend := r.Backend
		if r.Outbox != "" {
			backend = fmt.Sprintf("%s (%s outbox)", r.Backend, r.Outbox)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", scenario, backend, group(r.NovaPerSec), raw, ratio, r.Runs, r.Unit)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: write table: %w", err)
	}
	return nil
}

// WriteJSON writes results as JSON, one object per line:
// {"scenario","backend","nova_per_sec","raw_per_sec","ratio","runs","unit"},
// without raw_per_sec and ratio for a scenario that has no raw side, and
// with "procs" and "speedup" for the saga-procs scenario's and "outbox"
// for the relay's.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("bench: write json: %w", err)
		}
	}
	return nil
}

// group formats a rate rounded to a whole number with thousands separated
// by commas.
func group(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
