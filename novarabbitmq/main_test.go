package novarabbitmq

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/testenv"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		// A child process of a crash test: it does its part and is
		// killed, and never runs tests.
		runChild(role)
		os.Exit(3)
	}
	goleak.VerifyTestMain(testenv.Main(m))
}
