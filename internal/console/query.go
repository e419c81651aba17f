package console

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/saga"
)

// Paging: every list is read by key (a stream name, a version, a log
// position, a saga and run ID), never by an offset, so that a page costs
// the same at the end of a million-event log as at its start.
const (
	// DefaultLimit is a page's length when the request names none.
	DefaultLimit = 50
	// MaxLimit is the longest page a request may ask for.
	MaxLimit = 1000
	// maxText bounds free-text parameters (a prefix, a saga name).
	maxText = 256
	// maxReason bounds an operator's reason and actor.
	maxReason = 1000
)

// errBadRequest is matched by every error of the parsers below: the
// request is answered with 400 and the error's text.
var errBadRequest = errors.New("bad request")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

// Statuses are the saga run statuses a filter may name, in the order
// pages show them.
var Statuses = []saga.Status{saga.Running, saga.Compensating, saga.Stuck, saga.Completed, saga.Compensated, saga.Failed}

// one returns the single value of parameter key, refusing a repeated one.
func one(q url.Values, key string) (string, error) {
	v := q[key]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", badf("parameter %q is given %d times", key, len(v))
}

// known refuses a parameter that is not in keys, so that a mistyped one
// is an error rather than silently ignored.
func known(q url.Values, keys ...string) error {
	for k := range q {
		if !slices.Contains(keys, k) {
			return badf("unknown parameter %q: want %s", k, strings.Join(keys, ", "))
		}
	}
	return nil
}

// text reads a free-text parameter: valid UTF-8, no control characters,
// at most max bytes.
func text(q url.Values, key string, max int) (string, error) {
	s, err := one(q, key)
	if err != nil {
		return "", err
	}
	switch {
	case len(s) > max:
		return "", badf("%s: %d bytes is longer than the limit of %d", key, len(s), max)
	case !utf8.ValidString(s):
		return "", badf("%s: not valid UTF-8", key)
	case strings.ContainsFunc(s, isControl):
		return "", badf("%s: holds a control character", key)
	}
	return s, nil
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// limit reads the limit parameter: 1 to MaxLimit, DefaultLimit when absent.
func limit(q url.Values) (int, error) {
	s, err := one(q, "limit")
	if err != nil || s == "" {
		return DefaultLimit, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxLimit || s[0] == '+' {
		return 0, badf("limit %q: want a whole number from 1 to %d", s, MaxLimit)
	}
	return n, nil
}

// StreamsQuery is a page of the stream list: the streams whose names
// start with Prefix, after the name After.
type StreamsQuery struct {
	Prefix string
	After  string
	Limit  int
}

// ParseStreamsQuery reads ?prefix=&after=&limit=.
func ParseStreamsQuery(q url.Values) (StreamsQuery, error) {
	var s StreamsQuery
	var err error
	if err = known(q, "prefix", "after", "limit"); err != nil {
		return s, err
	}
	if s.Prefix, err = text(q, "prefix", nova.MaxStreamLen); err != nil {
		return s, err
	}
	if s.After, err = text(q, "after", nova.MaxStreamLen); err != nil {
		return s, err
	}
	if s.After != "" && !strings.HasPrefix(s.After, s.Prefix) {
		return s, badf("after %q does not start with the prefix %q", s.After, s.Prefix)
	}
	s.Limit, err = limit(q)
	return s, err
}

// Encode returns the query string of s, as ParseStreamsQuery reads it.
func (s StreamsQuery) Encode() string {
	q := url.Values{}
	if s.Prefix != "" {
		q.Set("prefix", s.Prefix)
	}
	if s.After != "" {
		q.Set("after", s.After)
	}
	if s.Limit != DefaultLimit && s.Limit != 0 {
		q.Set("limit", strconv.Itoa(s.Limit))
	}
	return q.Encode()
}

// EventsQuery is a page of one stream: Limit events from version From
// (inclusive), oldest first, or newest first when Backwards (From 0 is
// then the stream's end).
type EventsQuery struct {
	From      uint64
	Backwards bool
	Limit     int
}

// ParseEventsQuery reads ?from=&dir=forwards|backwards&limit=.
func ParseEventsQuery(q url.Values) (EventsQuery, error) {
	var e EventsQuery
	var err error
	if err = known(q, "from", "dir", "limit"); err != nil {
		return e, err
	}
	from, err := one(q, "from")
	if err != nil {
		return e, err
	}
	if from != "" {
		if e.From, err = strconv.ParseUint(from, 10, 64); err != nil || from[0] == '+' {
			return e, badf("from %q: want a stream version, a whole number", from)
		}
	}
	dir, err := one(q, "dir")
	if err != nil {
		return e, err
	}
	switch dir {
	case "", "forwards":
	case "backwards":
		e.Backwards = true
	default:
		return e, badf("dir %q: want forwards or backwards", dir)
	}
	e.Limit, err = limit(q)
	return e, err
}

// Encode returns the query string of e, as ParseEventsQuery reads it.
func (e EventsQuery) Encode() string {
	q := url.Values{}
	if e.From != 0 {
		q.Set("from", strconv.FormatUint(e.From, 10))
	}
	if e.Backwards {
		q.Set("dir", "backwards")
	}
	if e.Limit != DefaultLimit && e.Limit != 0 {
		q.Set("limit", strconv.Itoa(e.Limit))
	}
	return q.Encode()
}

// LogQuery is a page of the global log: Limit events after position
// After. Latest asks for the log's last page instead (no after given).
type LogQuery struct {
	After  nova.Position
	Latest bool
	Limit  int
}

// ParseLogQuery reads ?after=POSITION&limit=; without after, the page is
// the log's latest.
func ParseLogQuery(q url.Values) (LogQuery, error) {
	var l LogQuery
	var err error
	if err = known(q, "after", "limit"); err != nil {
		return l, err
	}
	after, err := one(q, "after")
	if err != nil {
		return l, err
	}
	if after == "" {
		l.Latest = true
	} else if l.After, err = nova.ParsePosition(after); err != nil {
		return l, badf("after %q: want a log position, COMMIT or COMMIT/PREPARE in decimal (0 is the start)", after)
	}
	l.Limit, err = limit(q)
	return l, err
}

// Encode returns the query string of l, as ParseLogQuery reads it.
func (l LogQuery) Encode() string {
	q := url.Values{}
	if !l.Latest {
		q.Set("after", l.After.String())
	}
	if l.Limit != DefaultLimit && l.Limit != 0 {
		q.Set("limit", strconv.Itoa(l.Limit))
	}
	return q.Encode()
}

// SagasQuery is a page of saga runs, filtered by saga name and status,
// after the run (AfterSaga, AfterRun) in (saga, run) order.
type SagasQuery struct {
	Saga      string
	Status    saga.Status
	AfterSaga string
	AfterRun  string
	Limit     int
}

// ParseSagasQuery reads ?saga=&status=&after_saga=&after_run=&limit=.
func ParseSagasQuery(q url.Values) (SagasQuery, error) {
	var s SagasQuery
	var err error
	if err = known(q, "saga", "status", "after_saga", "after_run", "limit"); err != nil {
		return s, err
	}
	if s.Saga, err = text(q, "saga", maxText); err != nil {
		return s, err
	}
	st, err := one(q, "status")
	if err != nil {
		return s, err
	}
	if st != "" && !slices.Contains(Statuses, saga.Status(st)) {
		return s, badf("status %q: want one of %s", st, joinStatuses())
	}
	s.Status = saga.Status(st)
	if s.AfterSaga, err = text(q, "after_saga", maxText); err != nil {
		return s, err
	}
	if s.AfterRun, err = text(q, "after_run", maxText); err != nil {
		return s, err
	}
	if (s.AfterSaga == "") != (s.AfterRun == "") {
		return s, badf("after_saga and after_run go together: give both or neither")
	}
	s.Limit, err = limit(q)
	return s, err
}

// Encode returns the query string of s, as ParseSagasQuery reads it.
func (s SagasQuery) Encode() string {
	q := url.Values{}
	if s.Saga != "" {
		q.Set("saga", s.Saga)
	}
	if s.Status != "" {
		q.Set("status", string(s.Status))
	}
	if s.AfterSaga != "" {
		q.Set("after_saga", s.AfterSaga)
		q.Set("after_run", s.AfterRun)
	}
	if s.Limit != DefaultLimit && s.Limit != 0 {
		q.Set("limit", strconv.Itoa(s.Limit))
	}
	return q.Encode()
}

func joinStatuses() string {
	s := make([]string, len(Statuses))
	for i, st := range Statuses {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// Actions are the operator actions on a saga run.
var Actions = []string{"retry", "skip", "abandon"}

// Action is an operator's action on a run, as a form or a JSON body
// gives it.
type Action struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
}

// Check validates an action: a known one, a reason for skip and
// abandon, an actor, and no control characters or oversize text.
func (a Action) Check() error {
	if !slices.Contains(Actions, a.Action) {
		return badf("action %q: want one of %s", a.Action, strings.Join(Actions, ", "))
	}
	for _, f := range []struct{ name, v string }{{"reason", a.Reason}, {"actor", a.Actor}} {
		switch {
		case len(f.v) > maxReason:
			return badf("%s: %d bytes is longer than the limit of %d", f.name, len(f.v), maxReason)
		case !utf8.ValidString(f.v):
			return badf("%s: not valid UTF-8", f.name)
		case strings.ContainsFunc(f.v, func(r rune) bool { return isControl(r) && r != '\n' && r != '\t' }):
			return badf("%s: holds a control character", f.name)
		}
	}
	if strings.TrimSpace(a.Actor) == "" {
		return badf("actor: say who acts")
	}
	if a.Action != "retry" && strings.TrimSpace(a.Reason) == "" {
		return badf("%s needs a reason", a.Action)
	}
	return nil
}
