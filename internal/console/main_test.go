package console_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.Main(m)) }
