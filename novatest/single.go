package novatest

import "testing"

// WithSingleEventAppends runs only the cases that append one event at a
// time, for a backend that refuses appends of several events where it
// cannot make them atomic (novanats on nats-server before 2.12, which
// returns an error matching nova.ErrNotImplemented). Every other case
// appends batches and is skipped with a message saying so; the backend
// must run the whole suite on a server that can.
func WithSingleEventAppends() StoreOption {
	return func(o *storeOptions) { o.single = true }
}

// runSingle runs the cases whose appends all carry one event.
func (s *suite) runSingle(t *testing.T) {
	t.Run("RaceExact", s.testRaceExact)
	t.Run("RaceAny", s.testRaceAny)
	t.Run("SubscribeResume", s.testSubscribeResume)
	t.Run("SubscribeWakeUp", s.testSubscribeWakeUp)
	t.Run("Batches", func(t *testing.T) {
		t.Skip("novatest: WithSingleEventAppends: the cases that append several events at once are skipped")
	})
}
