// Package retry decides, for every backend alike, what an append means when
// some of its event IDs are already stored: an idempotent retry that writes
// nothing, or a reused ID that is an error.
package retry

import (
	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

// Check decides an append to stream with expected version expected whose
// events' IDs are, at least in part, already stored. found maps each stored
// ID of events to its recorded event.
//
// The append is an idempotent retry, and Check returns the original result
// with Duplicate set, when every event is stored, in stream, at consecutive
// versions in the batch's order, with the same content, at the place the
// expected version implies (for an exact version N, from N+1). Anything else
// is a [*nova.DuplicateEventError] naming the first event that breaks it.
func Check(stream string, expected nova.ExpectedVersion, events []nova.EventData, found map[string]nova.Event) (nova.AppendResult, error) {
	var res nova.AppendResult
	for i, d := range events {
		e, ok := found[d.ID]
		dup := func() error {
			if !ok {
				// Some of the batch is stored and this one is not: the
				// batch cannot be a retry. Name the first stored one.
				for _, d := range events {
					if e, ok := found[d.ID]; ok {
						return &nova.DuplicateEventError{ID: d.ID, Stream: stream, StoredStream: e.Stream, StoredVersion: e.Version}
					}
				}
			}
			return &nova.DuplicateEventError{ID: d.ID, Stream: stream, StoredStream: e.Stream, StoredVersion: e.Version}
		}
		if !ok || e.Stream != stream || !validate.SameContent(e, d) {
			return nova.AppendResult{}, dup()
		}
		if i == 0 {
			res.FirstVersion = e.Version
			if v, exact := expected.Version(); exact && e.Version != v+1 {
				return nova.AppendResult{}, dup()
			}
		} else if e.Version != res.FirstVersion+uint64(i) {
			return nova.AppendResult{}, dup()
		}
		res.LastVersion = e.Version
		res.Position = e.Position
	}
	res.Duplicate = true
	return res, nil
}
