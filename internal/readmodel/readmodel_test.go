package readmodel

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/nova-go/nova"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestEscapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value     string
		nul, lone bool
	}{
		{`"plain"`, false, false},
		{`"a\u0000b"`, true, false},
		{`{"\u0000":1}`, true, false},
		{`"\\u0000"`, false, false}, // an escaped backslash, then text
		{`"\\\u0000"`, true, false},
		{`"\ud83d\ude80"`, false, false},
		{`"\uD83D\uDE80"`, false, false},
		{`"\ud800"`, false, true},
		{`"\udc00"`, false, true},
		{`"\ud800x"`, false, true},
		{`"\ud800\n"`, false, true},
		{`"\ud800\ud800"`, false, true},
		{`"\ud800\ud800\udc00"`, false, true},
		{`"\uDBFF"`, false, true},
		{`["\ud83d\ude80", "\ude80"]`, false, true},
		{`"\u00e9\uffff\t"`, false, false},
	}
	for _, tt := range tests {
		nul, lone := Escapes([]byte(tt.value))
		if nul != tt.nul || lone != tt.lone {
			t.Errorf("Escapes(%s) = %v, %v; want %v, %v", tt.value, nul, lone, tt.nul, tt.lone)
		}
	}
}

func TestCheckTable(t *testing.T) {
	t.Parallel()
	if got, err := CheckTable("p", ""); got != DefaultTable || err != nil {
		t.Errorf(`CheckTable("") = %q, %v; want the default`, got, err)
	}
	for _, ok := range []string{"a", "_", "views_2", strings.Repeat("x", MaxTableLen)} {
		if got, err := CheckTable("p", ok); got != ok || err != nil {
			t.Errorf("CheckTable(%q) = %q, %v", ok, got, err)
		}
	}
	for _, bad := range []string{"A", "1a", "a-b", "a b", `a"b`, "a`b", "a.b", "é", strings.Repeat("x", MaxTableLen+1)} {
		if _, err := CheckTable("p", bad); !errors.Is(err, nova.ErrInvalid) || !strings.HasPrefix(err.Error(), "p: ") {
			t.Errorf("CheckTable(%q) = %v, want a p: error matching nova.ErrInvalid", bad, err)
		}
	}
}
