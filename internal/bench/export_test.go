package bench

// PostgresRawSchema returns the scratch schema of a baseline made by the
// RawFunc of [Postgres].
func PostgresRawSchema(r Raw) string { return r.(*postgresRaw).table[0] }
