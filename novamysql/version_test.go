package novamysql_test

import (
	"errors"
	"testing"

	"github.com/nova-go/nova/novamysql"
)

func TestCheckVersionString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		version string
		old     bool
	}{
		{"10.11.6-MariaDB-0+deb12u1", false},
		{"10.6.0-MariaDB", false},
		{"11.4.2-MariaDB-log", false},
		{"5.5.5-10.11.6-MariaDB", false},
		{"10.5.23-MariaDB", true},
		{"10.3.39-MariaDB-0+deb10u1", true},
		{"5.5.5-10.4.1-MariaDB", true},
		{"8.0.36", false},
		{"8.0.1", false},
		{"8.4.0-commercial", false},
		{"9.1.0", false},
		{"8.0.0-dmr", true},
		{"5.7.44-log", true},
		{"5.7.25-TiDB-v7.5.0", true},
		{"something else", false},
	} {
		err := novamysql.CheckVersionString(tt.version)
		if got := errors.Is(err, novamysql.ErrServerTooOld); got != tt.old {
			t.Errorf("checkVersionString(%q) = %v, want too old %v", tt.version, err, tt.old)
		}
	}
}
