// Package sagarun holds what the saga run stores of novamem, novasqlite
// and novapg share: the checks of their input and the lease rule of a
// transition, so that every backend accepts, refuses and fences a write
// alike. The conformance suite (novatest.RunSagaStore) holds them to it.
package sagarun

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/internal/validate"
	"github.com/nova-go/nova/saga"
)

// Limits on the requests of a run store.
const (
	// MaxLimit is the most runs a List or Claim returns and the most
	// messages a Pending returns.
	MaxLimit = 1000
	// DefaultListLimit is what a List with Limit 0 returns at most.
	DefaultListLimit = 100
	// maxStringLen bounds a lease owner, a step name and an error text.
	maxStringLen = 64 << 10
)

// Times a run store keeps: the range of Unix nanoseconds in an int64, so
// that every backend can hold them.
var (
	minTime = time.Unix(0, 0)
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// statuses are the statuses a run may have.
var statuses = map[saga.Status]bool{
	saga.Running: true, saga.Compensating: true, saga.Stuck: true,
	saga.Completed: true, saga.Compensated: true, saga.Failed: true,
}

// CheckStatus reports a status that is not one of saga's.
func CheckStatus(s saga.Status) error {
	if !statuses[s] {
		return nova.Invalidf("saga", "unknown run status %q", s)
	}
	return nil
}

// CheckKey reports bad input to a call naming one run: an empty saga or
// run ID, a saga name [saga.Define] refuses (the stream names of
// runs are distinct only for valid saga names), or names that make no
// valid stream.
func CheckKey(sagaName, runID string) error {
	switch {
	case sagaName == "":
		return nova.Invalidf("saga", "empty saga name")
	case runID == "":
		return nova.Invalidf("saga", "saga %q: empty run ID", sagaName)
	}
	if err := ValidateName(sagaName); err != nil {
		return nova.Invalidf("saga", "saga %q: %w", sagaName, err)
	}
	if err := nova.ValidateStream(saga.StreamName(sagaName, runID)); err != nil {
		return nova.Invalidf("saga", "saga %q run %q: %w", sagaName, runID, err)
	}
	return nil
}

// legacyStream is the stream older versions gave every run, whatever its
// names held; saga.StreamName escapes the saga's name since. The form is
// frozen: it names what those versions wrote.
func legacyStream(sagaName, runID string) string { return "saga-" + sagaName + "-" + runID }

// CleanText returns s as every backend can keep it: invalid UTF-8 and NUL
// bytes replaced by U+FFFD, and cut to 64 KiB at a character boundary.
func CleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) > maxStringLen {
		s = s[:maxStringLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// checkString reports a string a database column cannot hold as given.
func checkString(what, s string) error {
	switch {
	case len(s) > maxStringLen:
		return nova.Invalidf("saga", "%s of %d bytes is longer than the limit of %d", what, len(s), maxStringLen)
	case !utf8.ValidString(s):
		return nova.Invalidf("saga", "%s %q is not valid UTF-8", what, s)
	case strings.IndexByte(s, 0) >= 0:
		return nova.Invalidf("saga", "%s %q contains a NUL byte", what, s)
	}
	return nil
}

// CheckTransition reports bad input to Record: a bad run key, a stream
// that is not the run's, an unknown status, a negative attempt or lease,
// strings a column cannot hold, events an append refuses, or an invalid
// outbox envelope. It first cleans t.Run.Error with [CleanText]: an
// error's text is whatever a step's error said, and a run must not get
// stuck on it.
func CheckTransition(t *saga.Transition) error {
	r := &t.Run
	r.Error = CleanText(r.Error)
	if err := CheckKey(r.Saga, r.RunID); err != nil {
		return err
	}
	if want := saga.StreamName(r.Saga, r.RunID); t.Stream != want {
		// A run an older version recorded goes on in the stream it named
		// "saga-{saga}-{run}", which two runs may share: only where the
		// run exists, never to create one.
		if t.Stream != legacyStream(r.Saga, r.RunID) {
			return nova.Invalidf("saga", "transition of run %q writes stream %q, want %q", r.RunID, t.Stream, want)
		}
		if t.Expected.Check(0) {
			return nova.Invalidf("saga", "transition of run %q at %v would create stream %q, named as older versions named "+
				"streams; a new run is written to %q", r.RunID, t.Expected, t.Stream, want)
		}
	}
	if err := CheckStatus(r.Status); err != nil {
		return err
	}
	if r.Attempt < 0 || r.Attempt > math.MaxInt32 {
		return nova.Invalidf("saga", "run %q: attempt %d, want 0 to %d", r.RunID, r.Attempt, math.MaxInt32)
	}
	switch {
	case t.Lease < 0:
		return nova.Invalidf("saga", "run %q: negative lease %v", r.RunID, t.Lease)
	case t.Owner != "" && t.Lease == 0:
		// The lease a transition creates a run with; asked of every
		// leased write, so that a store can decide the lease in one
		// statement without first reading whether the run exists.
		return nova.Invalidf("saga", "run %q: a write under %q's lease needs a positive Lease", r.RunID, t.Owner)
	}
	for what, x := range map[string]time.Time{"due time": r.DueAt, "deadline": r.DeadlineAt} {
		if !x.IsZero() && (x.Before(minTime) || !x.Before(maxTime)) {
			return nova.Invalidf("saga", "run %q: %s %v is outside %d to %d", r.RunID, what, x, minTime.Year(), maxTime.Year()-1)
		}
	}
	for what, s := range map[string]string{"step": r.Step, "lease owner": t.Owner} {
		if err := checkString("run "+r.RunID+" "+what, s); err != nil {
			return err
		}
	}
	if _, err := validate.Append(t.Stream, t.Events); err != nil {
		return err
	}
	for i, e := range t.Outbox {
		if err := e.Validate(); err != nil {
			return nova.Invalidf("saga", "outbox envelope %d: %w", i, err)
		}
		if e.Attempts > math.MaxInt32 {
			return nova.Invalidf("saga", "outbox envelope %q: %d attempts, want at most %d", e.ID, e.Attempts, math.MaxInt32)
		}
	}
	return nil
}

// Lease returns the lease fields of the row a transition writes, given
// the row it replaces (if exists) and the store's now: no lease for a
// write without an owner; the old lease kept for its owner while it is
// live, else [saga.ErrLeaseLost]; a new lease of t.Lease for a run the
// transition creates. The SQL stores decide the same in their upserts.
func Lease(t *saga.Transition, exists bool, old saga.RunInfo, now time.Time) (owner string, until time.Time, err error) {
	switch {
	case t.Owner == "":
		return "", time.Time{}, nil
	case exists:
		if !Held(old, t.Owner, now) {
			return "", time.Time{}, LeaseLost(t.Run.Saga, t.Run.RunID, t.Owner, old)
		}
		return old.LeaseOwner, old.LeaseUntil, nil
	default:
		return t.Owner, now.Add(t.Lease), nil
	}
}

// SortDue sorts claimed runs the earliest due first, then by (saga, run
// ID).
func SortDue(rows []saga.RunInfo) { slices.SortFunc(rows, CompareDue) }

// CompareDue orders runs the earliest due first, then by (saga, run ID).
func CompareDue(a, b saga.RunInfo) int {
	return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.Saga, b.Saga), cmp.Compare(a.RunID, b.RunID))
}

// KeepFirstDue inserts row into first, which holds at most limit rows in
// [CompareDue] order, when it is among the limit first: it keeps the runs
// a claim takes without sorting every candidate.
func KeepFirstDue(first []saga.RunInfo, row saga.RunInfo, limit int) []saga.RunInfo {
	if len(first) == limit && CompareDue(row, first[len(first)-1]) >= 0 {
		return first
	}
	i, _ := slices.BinarySearchFunc(first, row, CompareDue)
	if len(first) == limit {
		first = first[:limit-1]
	}
	return slices.Insert(first, i, row)
}

// Held reports whether owner holds an unexpired lease on row at now.
func Held(row saga.RunInfo, owner string, now time.Time) bool {
	return row.LeaseOwner == owner && row.LeaseUntil.After(now)
}

// LeaseLost returns the error matching [saga.ErrLeaseLost] for owner's
// write to a run whose row is row (zero for a missing run).
func LeaseLost(sagaName, runID, owner string, row saga.RunInfo) error {
	if row.LeaseOwner == "" || row.LeaseOwner == owner {
		return fmt.Errorf("%w: run %q of saga %q is not leased to %q", saga.ErrLeaseLost, runID, sagaName, owner)
	}
	return fmt.Errorf("%w: run %q of saga %q is leased to %q, not %q", saga.ErrLeaseLost, runID, sagaName, row.LeaseOwner, owner)
}

// CheckClaim reports bad input to Claim.
func CheckClaim(r saga.ClaimRequest) error {
	if err := checkOwner(r.Owner, r.Lease); err != nil {
		return err
	}
	switch {
	case len(r.Sagas) == 0:
		return nova.Invalidf("saga", "claim names no saga")
	case r.Limit < 1 || r.Limit > MaxLimit:
		return nova.Invalidf("saga", "claim limit %d, want 1 to %d", r.Limit, MaxLimit)
	}
	for _, s := range r.Sagas {
		if s == "" {
			return nova.Invalidf("saga", "claim names an empty saga")
		}
		if err := checkString("saga name", s); err != nil {
			return err
		}
	}
	return nil
}

func checkOwner(owner string, lease time.Duration) error {
	if owner == "" {
		return nova.Invalidf("saga", "empty lease owner")
	}
	if lease <= 0 {
		return nova.Invalidf("saga", "lease of %v, want a positive duration", lease)
	}
	return checkString("lease owner", owner)
}

// CheckRenew reports bad input to Renew.
func CheckRenew(sagaName, runID, owner string, lease time.Duration) error {
	if err := CheckKey(sagaName, runID); err != nil {
		return err
	}
	return checkOwner(owner, lease)
}

// CheckRelease reports bad input to Release.
func CheckRelease(sagaName, runID, owner string) error {
	if err := CheckKey(sagaName, runID); err != nil {
		return err
	}
	return checkOwner(owner, 1)
}

// ListLimit reports bad input to List and returns the limit it has.
func ListLimit(f saga.RunFilter) (int, error) {
	if f.Status != "" {
		if err := CheckStatus(f.Status); err != nil {
			return 0, err
		}
	}
	switch {
	case f.Limit < 0 || f.Limit > MaxLimit:
		return 0, nova.Invalidf("saga", "list limit %d, want 0 (default %d) to %d", f.Limit, DefaultListLimit, MaxLimit)
	case f.Limit == 0:
		return DefaultListLimit, nil
	}
	return f.Limit, nil
}

// After reports whether run (sagaName, runID) comes after f's paging
// point, in (saga, run ID) byte order.
func After(f saga.RunFilter, sagaName, runID string) bool {
	if sagaName != f.AfterSaga {
		return sagaName > f.AfterSaga
	}
	return runID > f.AfterRun
}

// Match reports whether row passes f's saga and status filters.
func Match(f saga.RunFilter, row saga.RunInfo) bool {
	return (f.Saga == "" || row.Saga == f.Saga) && (f.Status == "" || row.Status == f.Status)
}

// CheckPending reports bad input to an outbox's Pending.
func CheckPending(limit int) error {
	if limit < 1 || limit > MaxLimit {
		return nova.Invalidf("saga", "outbox limit %d, want 1 to %d", limit, MaxLimit)
	}
	return nil
}

// Headers returns the JSON an SQL outbox keeps of an envelope's headers,
// nil (NULL) for nil headers so that nil and empty stay apart.
func Headers(h map[string]string) ([]byte, error) {
	if h == nil {
		return nil, nil
	}
	return json.Marshal(h)
}

// SetHeaders decodes what [Headers] wrote into e.Headers.
func SetHeaders(e *broker.Envelope, b []byte) error {
	if b == nil {
		e.Headers = nil
		return nil
	}
	h := map[string]string{}
	if err := json.Unmarshal(b, &h); err != nil {
		return fmt.Errorf("envelope %q: headers: %w", e.ID, err)
	}
	e.Headers = h
	return nil
}

// Waker is an outbox's Wake channel: closed and replaced by each Wake.
// The zero value is ready to use.
type Waker struct {
	mu sync.Mutex
	ch chan struct{}
}

// C returns the channel the next Wake closes.
func (w *Waker) C() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// Wake closes the channel C returned, if any.
func (w *Waker) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// ValidateName checks a saga or step name as saga.Define does: not empty
// and a single topic token (see [broker.ValidateTopic]): no '.', '/',
// '*', '>' or white space. Errors match [nova.ErrInvalid].
func ValidateName(name string) error {
	if name == "" {
		return nova.Invalidf("saga", "empty name")
	}
	if strings.ContainsAny(name, ".*> \t\r\n/") {
		return nova.Invalidf("saga", "name %q must be one topic token, without '.', '*', '>', '/' or spaces", name)
	}
	if err := broker.ValidateTopic("saga." + name + ".x"); err != nil {
		return nova.Invalidf("saga", "name %q: %v", name, err)
	}
	return nil
}
