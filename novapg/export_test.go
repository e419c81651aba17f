package novapg

// QueuedAppends returns how many appends of s wait for the next group
// commit.
func QueuedAppends(s *Store) int { return s.group.Queued() }
