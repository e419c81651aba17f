package saga

import (
	"strconv"
	"strings"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
)

// A run's stream and its lifecycle envelopes are named by joining names
// with '-': the saga's, the run's and, for an envelope, the step's. Run
// IDs are business keys and may hold any character a stream ID may, '-'
// included, so the other names are written with every '-' turned into
// '.', a character no saga or step name holds (see [Define]). Each
// name written that way is then free of '-', and the run ID is what lies
// between them: saga "a-b" run "c" is "saga-a.b-c", saga "a" run "b-c"
// is "saga-a-b-c". Names without '-', the common case, read as written.

// StreamName returns the stream of run runID of saga: "saga-{saga}-{run}",
// with each '-' of the saga's name written as '.'. Distinct valid saga
// names and run IDs give distinct streams.
func StreamName(saga, runID string) string { return "saga-" + token(saga) + "-" + runID }

// legacyStreamName is the stream older versions gave a run:
// "saga-{saga}-{run}" as written, which two runs may share (saga "a-b"
// run "c", saga "a" run "b-c"). It is StreamName when the saga's name has
// no '-'. Runs those versions recorded stay in it: [load] looks there for
// a run that has no stream of the new form, and takes it only if the
// run's first event names the same saga and run.
func legacyStreamName(saga, runID string) string { return "saga-" + saga + "-" + runID }

// EnvelopeID returns the ID of a lifecycle event:
// "{saga}-{run}-{step}-{status}-{attempt}", with each '-' of the saga's
// and the step's names written as '.'. Distinct events get distinct IDs:
// the saga's name runs to the first '-', the step's, the status (which
// holds no '-') and the attempt are the last three fields, and the run ID
// is what lies between.
func EnvelopeID(saga, runID, step, status string, attempt int) string {
	return token(saga) + "-" + runID + "-" + token(step) + "-" + status + "-" + strconv.Itoa(attempt)
}

// IdempotencyKey returns the idempotency key of a step's call, as its
// [StepContext] carries it: "{saga}/{run}/{step}" for the action and
// "{saga}/{run}/{step}/compensate" for the compensation, with each part
// written with every '%' as "%25" and every '/' as "%2F". Run IDs may
// hold '/': escaped, they cannot move the boundaries between the parts,
// so distinct calls get distinct keys (run "r/x" step "compensate" is
// "s/r%2Fx/compensate", the compensation of run "r" step "x" is
// "s/r/x/compensate"). Names without '/' or '%', the common case, read as
// written.
func IdempotencyKey(saga, runID, step string, compensate bool) string {
	key := keyPart(saga) + "/" + keyPart(runID) + "/" + keyPart(step)
	if compensate {
		key += "/compensate"
	}
	return key
}

// keyPart escapes one part of an idempotency key: '%' as "%25", '/' as
// "%2F".
func keyPart(s string) string {
	if !strings.ContainsAny(s, "%/") {
		return s
	}
	return keyEscaper.Replace(s)
}

var keyEscaper = strings.NewReplacer("%", "%25", "/", "%2F")

// token writes a saga or step name for a stream or envelope ID: each '-'
// as '.'.
func token(name string) string { return strings.ReplaceAll(name, "-", ".") }

// validName checks a saga or step name: not empty and a single topic
// token (see [broker.ValidateTopic]): no '.', '/', '*', '>' or white
// space. internal/sagarun.ValidateName applies the same rule for the run
// stores; a test there holds the two together.
func validName(what, s string) error {
	if s == "" {
		return nova.Invalidf("saga", "empty %s", what)
	}
	if strings.ContainsAny(s, ".*> \t\r\n/") {
		return nova.Invalidf("saga", "%s %q must be one topic token, without '.', '*', '>', '/' or spaces", what, s)
	}
	if err := broker.ValidateTopic("saga." + s + ".x"); err != nil {
		return nova.Invalidf("saga", "%s %q: %v", what, s, err)
	}
	return nil
}
