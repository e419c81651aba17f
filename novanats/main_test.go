package novanats_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/testenv"
)

func TestMain(m *testing.M) {
	// A copy of the test binary started by a crash test is a group member
	// that the test kills, not a test run.
	if os.Getenv(brokerChildEnv) != "" {
		os.Exit(brokerChild())
	}
	// The private servers are child processes, stopped and waited for in
	// each test's cleanup with their system connections closed, so no
	// goroutine is left behind and nothing is ignored.
	goleak.VerifyTestMain(testenv.Main(m))
}
