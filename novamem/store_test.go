package novamem_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/novamem"
	"github.com/nova-go/nova/novatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStore returns a fresh store closed when t ends.
func newStore(t *testing.T) *novamem.Store {
	t.Helper()
	s, err := novamem.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	novatest.RunStore(t, func(t *testing.T) nova.Store { return newStore(t) })
}

// TestStoreSmallPages runs the suite with tiny pages, so every read crosses
// many page boundaries.
func TestStoreSmallPages(t *testing.T) {
	novatest.RunStore(t, func(t *testing.T) nova.Store {
		s, err := novamem.New(&novamem.Config{PageSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, novatest.WithScale(0.1))
}
