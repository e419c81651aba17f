package validate_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/internal/validate"
)

func TestInvalidFieldf(t *testing.T) {
	t.Parallel()
	field := validate.InvalidFieldf("novapg", "Config.PageSize", "negative size %d", -1)
	if got, want := field.Error(), "novapg: Config.PageSize: negative size -1"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var ie *nova.InvalidError
	if !errors.As(fmt.Errorf("ctx: %w", field), &ie) || ie.Pkg != "novapg" || ie.Field != "Config.PageSize" || ie.Msg != "negative size -1" {
		t.Errorf("errors.As found %+v, want the fields InvalidFieldf was given", ie)
	}
	if !errors.Is(field, nova.ErrInvalid) {
		t.Error("errors.Is(err, ErrInvalid) = false")
	}
}
