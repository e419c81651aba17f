package sagarun_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/sagarun"
	"github.com/nova-go/nova/saga"
)

// ValidateName and saga.Define hold saga names to one rule.
func TestValidateNameMatchesDefine(t *testing.T) {
	t.Parallel()
	step := saga.Step[struct{}]{Name: "s", Execute: func(context.Context, saga.StepContext, *struct{}) error { return nil }}
	for _, name := range []string{"orders", "order-fulfil", "注文", "", "a.b", "a*", "a>", "a b", "a\tb", "a/b", "a\x00", "\xff"} {
		err := sagarun.ValidateName(name)
		if err != nil && !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ValidateName(%q) = %v, want ErrInvalid", name, err)
		}
		_, defErr := saga.Define(name, step)
		if (err == nil) != (defErr == nil) {
			t.Errorf("name %q: ValidateName says %v, Define says %v", name, err, defErr)
		}
	}
}
