package novanats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/projectiondriver"
	"github.com/nova-go/nova/projection"
)

// checkpointDesc is the description of a store's checkpoint bucket.
const checkpointDesc = "nova projection checkpoints (format 1)"

// Checkpoints keeps projection checkpoints and leases in a JetStream
// key-value bucket of the store: "<StreamName>_checkpoints", created on
// the first write (or by [Migrate]). It is a [projection.CheckpointStore],
// a [projection.Leaser] whose saves are fenced by the lease
// ([projection.LeasedCheckpoints]) and a [projection.CheckpointLister].
// It is not a [projection.TxCheckpoints]: a read model cannot commit with
// a key-value entry, so a projection with these checkpoints gets each
// event at least once. See "Checkpoints and leases" in the package doc.
// Create it with [NewCheckpoints]; it is safe for concurrent use.
type Checkpoints struct {
	s *Store
	b *bucket
	// now is the clock of leases.
	now func() time.Time
}

var (
	_ projection.LeasedCheckpoints = (*Checkpoints)(nil)
	_ projection.CheckpointLister  = (*Checkpoints)(nil)
)

// NewCheckpoints returns the checkpoint store of s. It sends nothing: the
// bucket is looked up on first use.
func NewCheckpoints(s *Store) *Checkpoints {
	return &Checkpoints{s: s, b: newBucket(s, checkpointSuffix, checkpointDesc), now: time.Now}
}

// cpEntry is the value of a projection's key: its checkpoint and its
// lease, in one entry so that one compare-and-set covers both.
type cpEntry struct {
	Commit  uint64 `json:"c,omitempty"`
	Prepare uint64 `json:"p,omitempty"`
	// Updated is when the checkpoint last moved, in Unix nanoseconds by
	// the saver's clock; 0 if it never did.
	Updated int64 `json:"t,omitempty"`
	// Owner holds the lease until Until (Unix nanoseconds, by the
	// holder's clock), when set.
	Owner string `json:"o,omitempty"`
	Until int64  `json:"u,omitempty"`
}

func (e cpEntry) position() nova.Position { return nova.Position{Commit: e.Commit, Prepare: e.Prepare} }

// held reports whether owner holds the lease at now.
func (e cpEntry) held(owner string, now time.Time) bool {
	return e.Owner == owner && now.UnixNano() < e.Until
}

func checkName(what, name string) error {
	if err := nova.ValidateStream(name); err != nil {
		return nova.Invalidf("novanats", "%s: projection name: %v", what, err)
	}
	return nil
}

// read returns the bucket and name's entry with its revision, 0 when the
// name has none. With write, a missing bucket is created.
func (c *Checkpoints) read(ctx context.Context, what, name string, write bool) (jetstream.KeyValue, cpEntry, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, cpEntry{}, 0, c.s.wrap(ctx, what, err)
	}
	kv, err := c.b.get(ctx, write)
	if errors.Is(err, errNoBucket) {
		return nil, cpEntry{}, 0, nil
	}
	if err != nil {
		return nil, cpEntry{}, 0, c.s.wrap(ctx, what, err)
	}
	e, err := again(ctx, func() (jetstream.KeyValueEntry, error) { return kv.Get(ctx, kvKey(name)) })
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return kv, cpEntry{}, 0, nil
	case err != nil:
		return nil, cpEntry{}, 0, c.s.wrap(ctx, what, err)
	}
	var v cpEntry
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return nil, cpEntry{}, 0, fmt.Errorf("novanats: %s: revision %d of bucket %s: %v", what, e.Revision(), c.b.name, err)
	}
	return kv, v, e.Revision(), nil
}

// change applies edit to name's entry and writes it with a
// compare-and-set on the revision read, reading again when another
// writer came first. edit reports whether to write; its error is
// returned as it is.
func (c *Checkpoints) change(ctx context.Context, what, name string, edit func(e *cpEntry, exists bool) (bool, error)) error {
	ctx, cancel := c.s.opCtx(ctx)
	defer cancel()
	for {
		kv, e, rev, err := c.read(ctx, what, name, true)
		if err != nil {
			return err
		}
		write, err := edit(&e, rev != 0)
		if err != nil || !write {
			return err
		}
		value, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("novanats: %s: %w", what, err)
		}
		err = put(ctx, kv, kvKey(name), value, rev)
		switch {
		case err == nil:
			return nil
		case conflict(err) && ctx.Err() == nil:
			continue
		}
		return c.s.wrap(ctx, what, err)
	}
}

// Load returns name's checkpoint, or [nova.Start] when none is stored.
func (c *Checkpoints) Load(ctx context.Context, name string) (nova.Position, error) {
	what := fmt.Sprintf("load checkpoint %q", name)
	if err := checkName("load checkpoint", name); err != nil {
		return nova.Start, err
	}
	ctx, cancel := c.s.opCtx(ctx)
	defer cancel()
	_, e, _, err := c.read(ctx, what, name, false)
	if err != nil {
		return nova.Start, err
	}
	return e.position(), nil
}

// Save sets name's checkpoint, whatever it was and whoever holds its
// lease. A runner that holds the lease saves with [Checkpoints.SaveLeased].
func (c *Checkpoints) Save(ctx context.Context, name string, pos nova.Position) error {
	if err := checkName("save checkpoint", name); err != nil {
		return err
	}
	return c.change(ctx, fmt.Sprintf("save checkpoint %q", name), name, func(e *cpEntry, _ bool) (bool, error) {
		e.Commit, e.Prepare, e.Updated = pos.Commit, pos.Prepare, c.now().UnixNano()
		return true, nil
	})
}

// SaveLeased sets name's checkpoint if owner holds name's lease, and
// otherwise fails with an error matching [projection.ErrLeaseLost] and
// saves nothing. The check and the write are one compare-and-set on the
// entry that holds both, so a save by a holder whose lease expired or
// passed to another instance never lands.
func (c *Checkpoints) SaveLeased(ctx context.Context, name, owner string, pos nova.Position) error {
	if err := checkName("save checkpoint", name); err != nil {
		return err
	}
	if err := projectiondriver.ValidateLease(name, owner, nil); err != nil {
		return err
	}
	return c.change(ctx, fmt.Sprintf("save checkpoint %q", name), name, func(e *cpEntry, _ bool) (bool, error) {
		now := c.now()
		if !e.held(owner, now) {
			return false, fmt.Errorf("novanats: save checkpoint %q: %q does not hold the lease: %w", name, owner, projection.ErrLeaseLost)
		}
		e.Commit, e.Prepare, e.Updated = pos.Commit, pos.Prepare, now.UnixNano()
		return true, nil
	})
}

// Acquire takes name's lease for owner, or renews it, until ttl from now
// by this process's clock. It reports whether owner holds it: false when
// another owner holds a lease that has not run out by this process's
// clock.
func (c *Checkpoints) Acquire(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := projectiondriver.ValidateLease(name, owner, &ttl); err != nil {
		return false, err
	}
	got := false
	err := c.change(ctx, fmt.Sprintf("acquire lease on %q", name), name, func(e *cpEntry, _ bool) (bool, error) {
		now := c.now()
		if e.Owner != "" && e.Owner != owner && now.UnixNano() < e.Until {
			got = false
			return false, nil
		}
		e.Owner, e.Until = owner, now.Add(ttl).UnixNano()
		got = true
		return true, nil
	})
	return got && err == nil, err
}

// Release gives up owner's lease on name; a lease owner does not hold is
// left alone, and a name never stored stays so.
func (c *Checkpoints) Release(ctx context.Context, name, owner string) error {
	if err := projectiondriver.ValidateLease(name, owner, nil); err != nil {
		return err
	}
	what := fmt.Sprintf("release lease on %q", name)
	ctx, cancel := c.s.opCtx(ctx)
	defer cancel()
	// Look first, so that a store without the bucket stays so.
	if _, e, rev, err := c.read(ctx, what, name, false); err != nil || rev == 0 || e.Owner != owner {
		return err
	}
	return c.change(ctx, what, name, func(e *cpEntry, exists bool) (bool, error) {
		if !exists || e.Owner != owner {
			return false, nil
		}
		e.Owner, e.Until = "", 0
		return true, nil
	})
}

// List returns every stored checkpoint with its lease, ordered by name.
// LeaseUntil is by the clock of the lease's holder.
func (c *Checkpoints) List(ctx context.Context) ([]projection.CheckpointInfo, error) {
	ctx, cancel := c.s.opCtx(ctx)
	defer cancel()
	const what = "list checkpoints"
	if err := ctx.Err(); err != nil {
		return nil, c.s.wrap(ctx, what, err)
	}
	kv, err := c.b.get(ctx, false)
	if errors.Is(err, errNoBucket) {
		return nil, nil
	}
	if err != nil {
		return nil, c.s.wrap(ctx, what, err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, c.s.wrap(ctx, what, err)
	}
	defer w.Stop()
	var out []projection.CheckpointInfo
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return nil, c.s.wrap(ctx, what, ctx.Err())
		case e = <-w.Updates():
		}
		if e == nil { // the initial values are all in
			slices.SortFunc(out, func(a, b projection.CheckpointInfo) int { return strings.Compare(a.Name, b.Name) })
			return out, nil
		}
		name, ok := kvName(e.Key())
		if !ok {
			continue // not a key of this package's
		}
		var v cpEntry
		if err := json.Unmarshal(e.Value(), &v); err != nil {
			return nil, fmt.Errorf("novanats: %s: key %s of bucket %s: %v", what, e.Key(), c.b.name, err)
		}
		i := projection.CheckpointInfo{Name: name, Position: v.position(), LeaseOwner: v.Owner}
		if v.Owner != "" {
			i.LeaseUntil = time.Unix(0, v.Until)
		}
		if v.Updated != 0 {
			i.UpdatedAt = time.Unix(0, v.Updated)
		}
		out = append(out, i)
	}
}
