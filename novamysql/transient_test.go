package novamysql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/nova-go/nova"
)

// TestMarkTransient: the errors a later attempt may cure (a broken
// connection, a server going away, a deadlock, a lock wait timeout) are
// marked transient for the projection runner and the saga workers; the
// others are left alone.
func TestMarkTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1213, Message: "Deadlock found"}, true},
		{&mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded"}, true},
		{&mysql.MySQLError{Number: 1927, Message: "Connection was killed"}, true},
		{&mysql.MySQLError{Number: 1053, Message: "Server shutdown in progress"}, true},
		{fmt.Errorf("novamysql: commit: %w", mysql.ErrInvalidConn), true},
		{io.ErrUnexpectedEOF, true},
		{&mysql.MySQLError{Number: 1146, Message: "Table doesn't exist"}, false},
		{&nova.ConcurrencyError{Stream: "s"}, false},
		{context.Canceled, false},
		{errors.New("other"), false},
	} {
		got := markTransient(tc.err)
		if nova.IsTransient(got) != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("markTransient(%v): transient %v, want %v (and the error kept)", tc.err, nova.IsTransient(got), tc.want)
		}
	}
}
