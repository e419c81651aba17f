package nova

import "strconv"

// ExpectedVersion states what the caller believes about a stream when it
// appends, with KurrentDB's meaning. The zero value is [Any].
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectStreamExists
	expectExact
)

var (
	// Any appends whatever the stream's state.
	Any = ExpectedVersion{kind: expectAny}
	// NoStream appends only if the stream has no events.
	NoStream = ExpectedVersion{kind: expectNoStream}
	// StreamExists appends only if the stream has at least one event.
	StreamExists = ExpectedVersion{kind: expectStreamExists}
)

// Exact appends only if the stream's last event has version v. Exact(0)
// means the stream has no events, as [NoStream] does.
func Exact(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: v}
}

// Version returns the exact version expected and true, or 0 and false for
// [Any] and [StreamExists]. [NoStream] reports 0 and true.
func (e ExpectedVersion) Version() (uint64, bool) {
	switch e.kind {
	case expectExact:
		return e.version, true
	case expectNoStream:
		return 0, true
	}
	return 0, false
}

// IsAny reports whether e is [Any].
func (e ExpectedVersion) IsAny() bool { return e.kind == expectAny }

// IsStreamExists reports whether e is [StreamExists].
func (e ExpectedVersion) IsStreamExists() bool { return e.kind == expectStreamExists }

// Check reports whether a stream whose last version is current (0 for no
// stream) satisfies e.
func (e ExpectedVersion) Check(current uint64) bool {
	switch e.kind {
	case expectAny:
		return true
	case expectNoStream:
		return current == 0
	case expectStreamExists:
		return current > 0
	default:
		return current == e.version
	}
}

// String returns "any", "no-stream", "stream-exists" or the exact version.
func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectAny:
		return "any"
	case expectNoStream:
		return "no-stream"
	case expectStreamExists:
		return "stream-exists"
	default:
		return strconv.FormatUint(e.version, 10)
	}
}
