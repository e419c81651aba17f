package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/ncruces/go-sqlite3"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/broker"
	"github.com/nova-go/nova/novamysql"
	"github.com/nova-go/nova/novapg"
	"github.com/nova-go/nova/novasqlite"
	"github.com/nova-go/nova/saga"
)

// envelopesPerSaga is how many lifecycle envelopes a 3-step saga of no-op
// steps puts in the outbox: started and succeeded for each step, then the
// saga's completed.
const envelopesPerSaga = 7

// relayWriters is how many sagas run at once while the outbox is filled.
const relayWriters = 8

// relayJob returns the timed part of the relay scenario. Before it, a
// fresh store (a SQLite database configured by b.Outbox in a scratch
// directory, or one of b.OutboxStore) runs enough durable 3-step sagas of
// no-op steps, with no broker, to leave about n lifecycle envelopes in
// its outbox, as a service whose relay is behind would have. The one
// slice is a [broker.Relay]'s Flush of the whole outbox to the broker,
// batch by batch (read, PublishAll, mark sent) as the relay always
// works. The check: the outbox is empty and the server holds every
// envelope.
func (r *brokerRun) relayJob(ctx context.Context, b BrokerBackend, n int) (job, error) {
	runs, count, err := r.openOutbox(ctx, b)
	if err != nil {
		return job{}, err
	}
	sagas := (n + envelopesPerSaga - 1) / envelopesPerSaga
	if err := runSagas(ctx, runs, sagas); err != nil {
		return job{}, fmt.Errorf("fill the outbox: %w", err)
	}
	want, topics, err := count(ctx)
	if err != nil {
		return job{}, err
	}
	if want == 0 {
		return job{}, errors.New("the sagas left no envelope in the outbox")
	}
	r.topics = append(r.topics, topics...)
	outbox := runs.Outbox()
	relay, err := broker.NewRelay(outbox, r.nb, broker.RelayConfig{Logger: quiet})
	if err != nil {
		return job{}, err
	}
	return job{
		slices: 1,
		slice: func(ctx context.Context, _ int) (int, error) {
			k, err := relay.Flush(ctx)
			if err != nil {
				return 0, fmt.Errorf("relay: %w", err)
			}
			if k != want {
				return 0, fmt.Errorf("relayed %d envelopes, want %d", k, want)
			}
			return k, nil
		},
		check: func(ctx context.Context) error {
			left, err := outbox.Pending(ctx, 1)
			if err != nil {
				return fmt.Errorf("read the outbox: %w", err)
			}
			if len(left) > 0 {
				return fmt.Errorf("envelope %s is still in the outbox", left[0].Envelope.ID)
			}
			return r.checkHeld(ctx, topics, want)
		},
	}, nil
}

// openOutbox opens the relay scenario's fresh store of b and returns its
// runs and the function that counts its outbox by topic.
func (r *brokerRun) openOutbox(ctx context.Context, b BrokerBackend) (saga.RunStore, func(context.Context) (int, []string, error), error) {
	if ob := b.OutboxStore; ob.NovaFunc != nil {
		st, cleanup, err := ob.NovaFunc(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("open outbox: %w", err)
		}
		r.closers = append(r.closers, cleanup)
		switch s := st.(type) {
		case *novapg.Store:
			return novapg.NewRunStore(s), func(ctx context.Context) (int, []string, error) { return pgOutboxTopics(ctx, s) }, nil
		case *novamysql.Store:
			return novamysql.NewRunStore(s), func(ctx context.Context) (int, []string, error) { return mysqlOutboxTopics(ctx, s) }, nil
		}
		return nil, nil, fmt.Errorf("an outbox on %s (a %T): %w", ob.Name, st, nova.ErrNotImplemented)
	}
	dir, err := os.MkdirTemp("", "nova-bench-relay-")
	if err != nil {
		return nil, nil, fmt.Errorf("create scratch directory: %w", err)
	}
	r.closers = append(r.closers, func() error { return os.RemoveAll(dir) })
	cfg := b.Outbox
	cfg.Path = filepath.Join(dir, "outbox.db")
	st, err := novasqlite.Open(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("open outbox: %w", err)
	}
	r.closers = append(r.closers, st.Close)
	return novasqlite.NewRunStore(st), func(ctx context.Context) (int, []string, error) { return outboxTopics(ctx, cfg.Path) }, nil
}

// runSagas runs count durable 3-step sagas of no-op steps to their end
// on runs, relayWriters at a time, with no broker: their lifecycle
// envelopes stay in the outbox.
func runSagas(ctx context.Context, runs saga.RunStore, count int) error {
	def, err := saga.Define("bench", noopStep("a"), noopStep("b"), noopStep("c"))
	if err != nil {
		return err
	}
	c, err := saga.NewCoordinator(saga.Config{Runs: runs, Logger: quiet})
	if err != nil {
		return err
	}
	errs := make([]error, relayWriters)
	var wg sync.WaitGroup
	for w := range relayWriters {
		wg.Go(func() {
			for i := w; i < count && errs[w] == nil; i += relayWriters {
				x, err := saga.Run(ctx, c, def, fmt.Sprintf("r%d", i), benchSagaData{})
				switch {
				case err != nil:
					errs[w] = err
				case x.Status != saga.Completed:
					errs[w] = fmt.Errorf("saga run %s ended %s", x.RunID, x.Status)
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// pgOutboxTopics returns how many envelopes the outbox of the PostgreSQL
// store s holds, and their topics.
func pgOutboxTopics(ctx context.Context, s *novapg.Store) (int, []string, error) {
	rows, err := s.Pool().Query(ctx, `SELECT topic, count(*) FROM `+pgx.Identifier{s.Schema(), "outbox"}.Sanitize()+` GROUP BY topic ORDER BY topic`)
	if err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	n := 0
	var topics []string
	var topic string
	var k int
	_, err = pgx.ForEachRow(rows, []any{&topic, &k}, func() error {
		topics = append(topics, topic)
		n += k
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	return n, topics, nil
}

// mysqlOutboxTopics returns how many envelopes the outbox of the MySQL
// store s holds, and their topics.
func mysqlOutboxTopics(ctx context.Context, s *novamysql.Store) (int, []string, error) {
	rows, err := s.DB().QueryContext(ctx, "SELECT topic, COUNT(*) FROM `"+s.TablePrefix()+"outbox` GROUP BY topic ORDER BY topic")
	if err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	defer rows.Close()
	n := 0
	var topics []string
	for rows.Next() {
		var topic string
		var k int
		if err := rows.Scan(&topic, &k); err != nil {
			return 0, nil, fmt.Errorf("read the outbox: %w", err)
		}
		topics = append(topics, topic)
		n += k
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	return n, topics, nil
}

// outboxTopics returns how many envelopes the outbox of the SQLite
// database at path holds, and their topics, read with SQL on a read-only
// connection of its own: the outbox's Pending reads at most 1,000.
func outboxTopics(ctx context.Context, path string) (int, []string, error) {
	c, err := sqlite3.OpenFlags(path, sqlite3.OPEN_READONLY)
	if err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	defer c.Close()
	st, _, err := c.PrepareFlags(`SELECT topic, count(*) FROM outbox GROUP BY topic ORDER BY topic`, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	defer st.Close()
	n := 0
	var topics []string
	for st.Step() {
		topics = append(topics, st.ColumnText(0))
		n += st.ColumnInt(1)
	}
	if err := st.Err(); err != nil {
		return 0, nil, fmt.Errorf("read the outbox: %w", err)
	}
	return n, topics, ctx.Err()
}
