package projection

import (
	"context"
	"time"
)

// HoldReporter is implemented by stores whose readers an append that is
// still running holds back, so that no reader passes an event that may
// yet commit below it (novapg: an append in a caller's transaction holds
// every reader of the schema until that transaction ends). [Runner.Lag]
// and [StoredLag] report what it says in [Lag.HeldBy].
type HoldReporter interface {
	// HeldBy describes the append that holds readers back if it has
	// been running for at least min, or returns "".
	HeldBy(ctx context.Context, min time.Duration) (string, error)
}

// HeldFor is how long an append must have been running for [Lag.HeldBy]
// to name it: every append holds readers for the moment its commit takes.
const HeldFor = time.Second

// heldBy asks store, when it is a [HoldReporter], what holds its readers.
func heldBy(ctx context.Context, store any) (string, error) {
	h, ok := store.(HoldReporter)
	if !ok {
		return "", nil
	}
	return h.HeldBy(ctx, HeldFor)
}
