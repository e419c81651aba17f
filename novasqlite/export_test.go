package novasqlite

// Groups returns how many transactions s's writer has run.
func Groups(s *Store) uint64 { return s.groups.Load() }

// Taken returns how many requests s's writer has taken.
func Taken(s *Store) uint64 { return s.taken.Load() }

// Queued returns how many requests wait in s's queue.
func Queued(s *Store) int { return len(s.queue) }
