package novamysql

// DriverDSN is driverDSN for tests.
var DriverDSN = driverDSN

// Groups returns how many transactions s's writer has begun.
func Groups(s *Store) uint64 { return s.groups.Load() }

// Taken returns how many appends s's writer has taken.
func Taken(s *Store) uint64 { return s.taken.Load() }
