package nova

import (
	"cmp"
	"strconv"
	"strings"
)

// Position is an event's place in the global log. Positions order the log
// in commit order and are compared as a pair, as KurrentDB's $all position
// is: first Commit, then Prepare.
//
// On PostgreSQL Commit is the writing transaction's ID and Prepare the
// event's sequence number; a sequence alone is allocated at insert time, not
// at commit time, so it cannot order the log by itself. Backends that commit
// one writer at a time (memory, SQLite, MySQL, JetStream) use a single
// sequence in Commit and leave Prepare zero.
//
// The zero Position is the start of the log, before any event.
type Position struct {
	Commit  uint64
	Prepare uint64
}

// Start is the position before the first event of the log.
var Start = Position{}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.Commit, q.Commit); c != 0 {
		return c
	}
	return cmp.Compare(p.Prepare, q.Prepare)
}

// Less reports whether p is before q.
func (p Position) Less(q Position) bool { return p.Compare(q) < 0 }

// IsZero reports whether p is [Start].
func (p Position) IsZero() bool { return p == Start }

// String formats p as "commit/prepare", or just "commit" when Prepare is 0.
// [ParsePosition] reads both forms back.
func (p Position) String() string {
	if p.Prepare == 0 {
		return strconv.FormatUint(p.Commit, 10)
	}
	return strconv.FormatUint(p.Commit, 10) + "/" + strconv.FormatUint(p.Prepare, 10)
}

// ParsePosition parses the output of [Position.String]. Anything else fails
// with an error matching [ErrInvalid].
func ParsePosition(s string) (Position, error) {
	c, pr, two := strings.Cut(s, "/")
	commit, err := strconv.ParseUint(c, 10, 64)
	if err != nil || c == "" || c[0] == '+' {
		return Position{}, invalidf("invalid position %q: want COMMIT or COMMIT/PREPARE in decimal", s)
	}
	if !two {
		return Position{Commit: commit}, nil
	}
	prepare, err := strconv.ParseUint(pr, 10, 64)
	if err != nil || pr == "" || pr[0] == '+' {
		return Position{}, invalidf("invalid position %q: want COMMIT or COMMIT/PREPARE in decimal", s)
	}
	return Position{Commit: commit, Prepare: prepare}, nil
}
