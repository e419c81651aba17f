package aggregate

import (
	"context"
	"errors"
	"fmt"

	"github.com/nova-go/nova"
)

// Update handles one command against aggregate id: it loads the aggregate
// (an empty stream gives a fresh state at version 0, so one Update both
// creates and changes aggregates), calls decide with its state, and saves
// the events decide returns, expecting the version it loaded. When the save
// fails with [nova.ErrConcurrency] because another writer got there first,
// it loads and decides again, up to [Config.MaxAttempts] times in all.
//
// decide must not modify the state and must be safe to call more than
// once; it should refuse a command by returning an error, which Update
// returns as is, having written nothing. Update returns the root after the
// save (or as loaded, when decide returned no events). opts may be nil.
func (r *Repository[T]) Update(ctx context.Context, id string, decide func(state *T) ([]any, error), opts *SaveOptions) (*Root[T], error) {
	if _, err := r.stream(id); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		root, err := r.Load(ctx, id)
		if errors.Is(err, nova.ErrNotFound) {
			root, err = r.New(id)
		}
		if err != nil {
			return nil, err
		}
		events, err := callDecide(decide, root.State)
		if err != nil {
			return nil, err
		}
		_, err = r.Save(ctx, root, events, opts)
		if err == nil {
			return root, nil
		}
		if !errors.Is(err, nova.ErrConcurrency) || attempt >= r.attempts {
			if errors.Is(err, nova.ErrConcurrency) {
				return nil, fmt.Errorf("aggregate: update %q: gave up after %d attempts: %w", id, attempt, err)
			}
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("aggregate: update %q: %w", id, err)
		}
	}
}

// callDecide runs decide under recover: a panic is its error.
func callDecide[T any](decide func(state *T) ([]any, error), state *T) (events []any, err error) {
	defer nova.Recover(&err)
	return decide(state)
}
