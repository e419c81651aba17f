package projection_test

import (
	"testing"

	"github.com/nova-go/nova/novatest"
	"github.com/nova-go/nova/projection"
)

func TestMemoryCheckpoints(t *testing.T) {
	t.Parallel()
	novatest.RunCheckpointStore(t, func(*testing.T) projection.CheckpointStore {
		return projection.NewMemoryCheckpoints()
	}, novatest.WithPrepare())
}
