package novasqlite

import "context"

// Groups returns how many transactions s's leaders have begun.
func Groups(s *Store) uint64 { return s.groups.Load() }

// Taken returns how many requests s's leaders have taken.
func Taken(s *Store) uint64 { return s.taken.Load() }

// Queued returns how many requests wait behind s's leader.
func Queued(s *Store) int {
	return s.group.Queued()
}

// QueryWriteLock takes the write lock on one of s's reading connections,
// through the path every read takes, and gives it back: it fails as a
// read does when another process holds the lock past BusyTimeout.
func QueryWriteLock(ctx context.Context, s *Store) error {
	return s.query(ctx, func(r *reader) error {
		if err := r.conn.Exec(`PRAGMA query_only = 0`); err != nil {
			return err
		}
		defer r.conn.Exec(`PRAGMA query_only = 1`)
		if err := r.conn.Exec(`BEGIN IMMEDIATE`); err != nil {
			return err
		}
		return r.conn.Exec(`ROLLBACK`)
	})
}
