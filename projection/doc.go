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
//	r, _ := projection.NewRunner(projection.Config{Store: store, Projection: p})
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
// Where the checkpoint is kept decides the guarantee (see
// [CheckpointStore]). When Config.Checkpoints is a [TxCheckpoints] — the
// SQL backends' checkpoint stores (novasqlite.NewCheckpoints,
// novapg.NewCheckpoints) are — each batch's handlers run inside its
// Commit, in the transaction that moves the checkpoint, and write the
// read model through that transaction (novasqlite.TxFromContext,
// novapg.TxFromContext): both commit or neither does, so each event's
// effect is applied once even when the process dies at any point. A
// handler may still run more than once for an event (a transaction rolled
// back and run again), of which only one run's writes commit: handlers
// write through the transaction and have no other side effects. The
// commit is fenced: it requires the stored checkpoint to be where the
// runner left it (a rebuild's swap or another instance may have moved
// it; the runner then reloads it and goes on from there) and, with
// leases, the runner to hold the lease. With any other checkpoint store
// the checkpoint is saved after its batch's handlers succeed, and a crash
// between the two makes the batch run again: delivery is at least once,
// and handlers should be idempotent (an upsert by key is).
//
// # Batched read-model writes
//
// Under a [TxCheckpoints], the runner gives the handlers of each run of a
// batch a unit of work in their ctx, and the SQL query stores
// (novasqlite's, novapg's, novamysql's) batch under it: an upsert waits
// in it, keyed by table and key, a read looks in it first (a handler
// reads what an earlier event of the batch wrote, and a document read
// from the database once is not read again in the batch), and at the end
// of the batch the writes go out as one multi-row upsert per table
// (several within the database's limits on parameters and message size),
// in the transaction, before the checkpoint moves. Handlers keep their
// shape (read a document, change it, upsert it) and write a batch's
// documents in a few statements instead of one per event. A run of apply
// that fails drops its buffer with the transaction, and each run starts
// with an empty one. [Prefetch] declares the keys a handler will read,
// so that the documents of a whole batch are read in one query. Outside
// a runner's commit (and with other checkpoint stores) the query stores
// read and write at once, as before.
//
// A handler that runs SQL of its own gets the transaction from
// novasqlite.TxFromContext, novapg.TxFromContext or
// novamysql.TxFromContext, which first write out what the query stores
// hold, so that its statements see the batch's writes and come after
// them: it should call TxFromContext where it runs its statements, not
// keep the transaction from before a query store's write. Such handlers
// batch less. A value the database refuses only at the end of the batch
// (one MariaDB's JSON_VALID rejects) fails the batch's commit; the
// runner then runs the batch again without buffering, where the write
// fails in its handler's call, which the poison policy handles.
//
// # Poison events
//
// A handler error stops the projection with a [*PoisonError] naming the
// event (ID, stream, version, type, position). Config.Retries runs the
// handler again with exponential backoff first; with Config.OnPoison set
// to [PoisonSkip] the event is recorded ([Runner.Skipped], Config.SkipFunc) and
// the projection goes on. Under a [TxCheckpoints], a handler error rolls
// its batch back; the events before the failing one are committed again
// without it, and the failing one is retried alone, each attempt in a
// transaction of its own, then stopped on or skipped (the checkpoint moves
// past a skipped event with nothing applied).
//
// # Faults: panics and transient errors
//
// Handlers, and every callback the runner calls (SkipFunc, ResetFunc, a
// rebuild's progress function, NowFunc), run under recover. A panicking
// handler is a failing handler: its [*nova.PanicError] (with the panic's
// stack) is retried, then stopped on or skipped by the poison policy,
// like any handler error; under a [TxCheckpoints] its transaction is
// rolled back first. A panicking SkipFunc fails the runner with the
// panic; ResetFunc's and progress's are their call's error.
//
// Errors of the store, the checkpoint store or the network that waiting
// may cure ([nova.IsTransient]: a lost connection, a server restarting or
// shutting down, a serialization failure or deadlock, a busy database;
// the backends mark theirs) are not the handler's, whether they come
// from reading the log, from a commit, or from a handler's own write
// through the commit's transaction: the runner shows [Retrying], with the
// error and the attempt count in its [Status], waits with capped
// exponential backoff and full jitter (Config.RetryBackoff up to
// Config.MaxBackoff), reloads its stored checkpoint, which tells whether
// a commit the error hid went through, and goes on. Only a handler's own
// errors go to the poison policy. A runner whose checkpoint store is
// unreachable when it starts starts retrying.
//
// # One instance, by lease
//
// With Config.Leaser (the SQL checkpoint stores are Leasers) a runner
// handles events only while it holds the projection's lease, renewed every
// LeaseTTL/3; other instances wait as standbys ([Standby] in
// [Runner.Status]) and one takes over when the holder stops (Stop
// releases the lease) or dies (its lease runs out). An instance that lost
// its lease goes back to waiting, and its commits in flight fail with
// [ErrLeaseLost] and write nothing. A checkpoint store that commits no
// read model but fences its saves by the lease ([LeasedCheckpoints],
// novanats's) refuses the save of an instance that lost its lease the
// same way; the handlers' writes before it stand (at least once).
//
// # Rebuild
//
// [Runner.Rebuild] rebuilds a SQL read model beside the live one: it
// prepares an empty shadow of each of Config.Tables, runs the handlers
// over the whole log with a ctx that makes [Table] name the shadows, and
// swaps the shadows in, with the checkpoint, in one transaction, once the
// rebuild has caught up with the head. Readers see the old model until
// the swap and the whole new one after it; a running runner follows on
// from the swapped checkpoint. [Runner.Reset] is the simpler way for read
// models that are not SQL tables: it sets the checkpoint back to the
// start and calls Config.ResetFunc, so the next Start rebuilds in place.
//
// # Lag
//
// [Runner.Status] reports the state, the checkpoint, the last error and
// the time lag (now minus the RecordedAt of the last handled event);
// [Runner.Lag] counts the events between the checkpoint and the log's head
// and the age of the oldest one not yet handled. [StoredLag] does the same
// from a stored checkpoint without a runner, and a [CheckpointLister]
// lists the stored checkpoints and leases: what `nova projections` shows.
//
// Every entry point validates its input: bad names, event types and
// config fields fail with an error matching [nova.ErrInvalid] that names
// what is wrong.
//
// # Testing
//
// The projcrash package kills a runner on SQLite with SIGKILL at random
// points while writers append, and checks that the read model holds each
// event's effect once and equals a fresh rebuild.
package projection
