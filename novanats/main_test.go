package novanats_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/testenv"
)

func TestMain(m *testing.M) {
	// The embedded servers are shut down and waited for in each test's
	// cleanup: nats-server leaves no goroutine behind, so nothing is
	// ignored.
	goleak.VerifyTestMain(testenv.Main(m))
}
