// Package projection keeps read models up to date from the event log.
//
// # The idea
//
// A projection is a named set of handlers by event type. A [Runner] feeds
// it: it subscribes to the store's global log just after the projection's
// checkpoint, hands each event to the handler for its type and, after a
// batch of events has been handled, saves the position of the last one as
// the new checkpoint. A restarted runner resumes after that checkpoint, so
// events already handled are not handled again; events of types the
// projection has no handler for are passed over, and the checkpoint moves
// past them too.
//
//	p, _ := projection.New("order-summary", reg)
//	_ = projection.On(p, func(ctx context.Context, e nova.Event, v OrderPlaced) error {
//		return cqrs.UpsertProjection(ctx, qs, v.ID, Summary{...})
//	})
//	r, _ := projection.NewRunner(&projection.Config{Store: store, Projection: p})
//	_ = r.Start(ctx)
//	defer r.Stop(ctx)
//	res, _ := store.Append(ctx, ...)     // a command saves events
//	_ = r.WaitFor(ctx, res.Position)      // read your writes
//
// Handlers get events in their current shape: typed handlers ([On])
// decode through the projection's [nova.Registry], which upcasts old
// shapes first; raw handlers ([OnType], [OnAny]) get the upcast event.
//
// # Delivery
//
// The checkpoint is saved after the handlers of its batch succeed. Where
// it is kept decides the guarantee (see [CheckpointStore]): with a SQL
// read model and the checkpoint in the same transaction as its writes,
// each event's effect is applied once; otherwise a crash between a
// handler's write and the checkpoint's save makes the events of that
// batch run again, so delivery is at least once and handlers should be
// idempotent (an upsert by key is).
//
// # Poison events, lag, rebuild
//
// A handler error stops the projection with a [*PoisonError] naming the
// event (ID, stream, version, type, position). Config.Retries runs the
// handler again with exponential backoff first; with Config.OnPoison set
// to [Skip] the event is recorded ([Runner.Skipped], Config.SkipFunc) and
// the projection goes on. [Runner.Status] reports the checkpoint, the
// state (running, stopped, failed), the last error and the time lag (now
// minus the RecordedAt of the last handled event); [Runner.Lag] counts the
// events between the checkpoint and the log's head. [Runner.Reset] sets
// the checkpoint back to the start and calls Config.ResetFunc to empty the
// read model, so the next Start rebuilds it.
//
// Every entry point validates its input: bad names, nil handlers or
// contexts and wrong config fields fail with an error matching
// [nova.ErrInvalid] that names what is wrong.
//
// # Status
//
// This is the first, server-free slice of the runner: in-memory
// checkpoints, batches, retries and skips, lag, WaitFor and Reset, tested
// on novamem. Still to come in a later session: SQL read models whose
// checkpoint commits in the same transaction as their writes (a Tx-taking
// handler and checkpoint store in the SQL backends), rebuild into a fresh
// table and swap so readers never see a half-built model, one active
// instance per projection across processes by lease, the SIGKILL crash
// test, and the `nova projections` / `nova projection rebuild` CLI.
package projection
