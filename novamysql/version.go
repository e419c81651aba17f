package novamysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrServerTooOld is matched by the error Open and Migrate return for a
// server older than MariaDB 10.6 or MySQL 8.0.1: saga workers claim runs
// with SELECT ... FOR UPDATE SKIP LOCKED, which older servers lack.
// Nothing is created or changed.
var ErrServerTooOld = errors.New("novamysql: the server is too old: Nova needs MariaDB 10.6 or later, or MySQL 8.0.1 or later")

// checkServer fails with an error matching ErrServerTooOld when the
// server of db is older than those that have SKIP LOCKED.
func checkServer(ctx context.Context, db *sql.DB) error {
	var version string
	if err := db.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&version); err != nil {
		return fmt.Errorf("novamysql: read the server's version: %w", err)
	}
	return checkVersionString(version)
}

// checkVersionString checks a server's VERSION(): "10.11.6-MariaDB-log",
// "8.0.36", "8.4.0-commercial". A version it cannot read is let through:
// servers that speak MySQL's protocol under another numbering (TiDB, a
// proxy) fail later, on the statement they lack, if they lack one.
func checkVersionString(version string) error {
	mariadb := strings.Contains(strings.ToLower(version), "mariadb")
	if mariadb {
		// Replication once needed MariaDB to call itself 5.5.5-10.x.
		version = strings.TrimPrefix(version, "5.5.5-")
	}
	nums := strings.SplitN(strings.SplitN(version, "-", 2)[0], ".", 3)
	if len(nums) < 2 {
		return nil
	}
	major, err1 := strconv.Atoi(nums[0])
	minor, err2 := strconv.Atoi(nums[1])
	patch := 0
	if len(nums) == 3 {
		patch, _ = strconv.Atoi(strings.TrimRightFunc(nums[2], func(r rune) bool { return r < '0' || r > '9' }))
	}
	if err1 != nil || err2 != nil {
		return nil
	}
	old := false
	switch {
	case mariadb:
		old = major < 10 || major == 10 && minor < 6
	default:
		old = major < 8 || major == 8 && minor == 0 && patch < 1
	}
	if old {
		return fmt.Errorf("%w; this server is %s", ErrServerTooOld, version)
	}
	return nil
}
