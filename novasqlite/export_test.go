package novasqlite

// Groups returns how many transactions s's leaders have begun.
func Groups(s *Store) uint64 { return s.groups.Load() }

// Taken returns how many requests s's leaders have taken.
func Taken(s *Store) uint64 { return s.taken.Load() }

// Queued returns how many requests wait behind s's leader.
func Queued(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}
