package querystore_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nova-go/nova"
	"github.com/nova-go/nova/cqrs"
	"github.com/nova-go/nova/internal/querystore"
)

func TestValidateKeyAndValue(t *testing.T) {
	t.Parallel()
	long := string(make([]byte, cqrs.MaxKeyLen))
	for _, tt := range []struct {
		key     string
		wantErr bool
	}{
		{"a", false}, {"a:b/c d%\"'", false}, {"注文", false},
		{"", true}, {"a\tb", true}, {"a\x7f", true}, {"a\u0085b", true}, {"a\u009b0m", true}, {"a\u00a0b", false}, {"\xff", true}, {long, true}, {long[:cqrs.MaxKeyLen-1] + "x", true},
	} {
		if err := querystore.ValidateKey(tt.key); (err != nil) != tt.wantErr || err != nil && !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ValidateKey(%.20q) = %v, want error %v", tt.key, err, tt.wantErr)
		}
	}
	for _, tt := range []struct {
		value   string
		wantErr bool
	}{
		{`{}`, false}, {`null`, false}, {`"é"`, false}, {``, true}, {`{`, true}, {"\"\xff\"", true}, {`{} x`, true},
	} {
		if err := querystore.ValidateValue("k", json.RawMessage(tt.value)); (err != nil) != tt.wantErr || err != nil && !errors.Is(err, nova.ErrInvalid) {
			t.Errorf("ValidateValue(%q) = %v, want error %v", tt.value, err, tt.wantErr)
		}
	}
}
