package console

import (
	"errors"
	"fmt"
	"time"

	"github.com/nova-go/nova/saga"
)

func errorsIsWrongStatus(err error) bool { return errors.Is(err, saga.ErrWrongStatus) }

// RebuildStatus is a rebuild's progress, GET
// /api/projections/{name}/rebuild.
type RebuildStatus struct {
	Projection string     `json:"projection"`
	Running    bool       `json:"running"`
	Done       int        `json:"done"`
	Total      int        `json:"total"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// Percent is the share done, 0 to 100.
func (r RebuildStatus) Percent() int {
	if r.Total <= 0 {
		if r.Running {
			return 0
		}
		return 100
	}
	return min(100, r.Done*100/r.Total)
}

type rebuildState struct{ s RebuildStatus }

func (c *Console) rebuildStatus(name string) *RebuildStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.rebuilds[name]
	if !ok {
		return nil
	}
	s := st.s
	return &s
}

// startRebuild starts a rebuild of the projection name in the
// background, owned by the console (Close stops and waits for it). One
// rebuild of a projection runs at a time.
func (c *Console) startRebuild(name string) (RebuildStatus, error) {
	if err := c.readOnly(); err != nil {
		return RebuildStatus{}, err
	}
	fn, ok := c.cfg.Rebuilds[name]
	if !ok {
		return RebuildStatus{}, errNotFound(fmt.Sprintf("console: cannot rebuild %q: a rebuild runs the projection's handlers, and this console has those of the demo's projection only", name))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.rebuilds[name]; ok && st.s.Running {
		return st.s, errConflict(fmt.Sprintf("console: %s is already rebuilding", name))
	}
	if c.ctx.Err() != nil {
		return RebuildStatus{}, errConflict("console: shutting down")
	}
	st := &rebuildState{s: RebuildStatus{Projection: name, Running: true, StartedAt: time.Now().UTC()}}
	c.rebuilds[name] = st
	c.wg.Go(func() {
		err := fn(c.ctx, func(done, total int) {
			c.mu.Lock()
			st.s.Done, st.s.Total = done, total
			c.mu.Unlock()
		})
		c.mu.Lock()
		defer c.mu.Unlock()
		end := time.Now().UTC()
		st.s.Running, st.s.EndedAt = false, &end
		if err != nil {
			st.s.Error = c.cfg.HideFunc(err.Error())
			c.log.Warn("console: rebuild failed", "projection", name, "err", st.s.Error)
		}
	})
	return st.s, nil
}
