package novanats_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/testenv"
)

func TestMain(m *testing.M) {
	// The private servers are child processes, stopped and waited for in
	// each test's cleanup with their system connections closed, so no
	// goroutine is left behind and nothing is ignored.
	goleak.VerifyTestMain(testenv.Main(m))
}
