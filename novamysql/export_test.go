package novamysql

// DriverDSN is driverDSN for tests.
var DriverDSN = driverDSN

// Groups returns how many transactions s's writer has begun.
func Groups(s *Store) uint64 { return s.groups.Load() }

// Taken returns how many appends s's writer has taken.
func Taken(s *Store) uint64 { return s.taken.Load() }

// MaxPacket returns the max_allowed_packet s read when it opened, and
// SetMaxPacket changes it, as a server with a smaller setting would have.
func MaxPacket(s *Store) int64       { return s.maxPacket }
func SetMaxPacket(s *Store, n int64) { s.maxPacket = n }

// CheckVersionString is checkVersionString for tests.
var CheckVersionString = checkVersionString
