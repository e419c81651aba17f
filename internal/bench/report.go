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
// without a raw side shows "-" for it and its ratio.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tbackend\tnova/s\traw/s\tratio\truns\tunit\t")
	for _, r := range results {
		raw, ratio := group(r.RawPerSec), fmt.Sprintf("%.2f", r.Ratio)
		if r.RawPerSec == 0 {
			raw, ratio = "-", "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", r.Scenario, r.Backend, group(r.NovaPerSec), raw, ratio, r.Runs, r.Unit)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: write table: %w", err)
	}
	return nil
}

// WriteJSON writes results as JSON, one object per line:
// {"scenario","backend","nova_per_sec","raw_per_sec","ratio","runs","unit"},
// without raw_per_sec and ratio for a scenario that has no raw side.
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
