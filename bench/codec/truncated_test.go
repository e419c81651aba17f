package codec_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/nova-go/nova/bench/codec"
)

// TestTruncated decodes every proper prefix of the corpus inputs (and of
// encoding/json's outputs for the corpus values), one after another into
// the same types, as a stream of cut-off or malformed events would arrive:
// no candidate may panic, and each must refuse exactly the prefixes
// encoding/json refuses.
func TestTruncated(t *testing.T) {
	type input struct {
		in   []byte
		newT func() any
	}
	var inputs []input
	for _, tc := range decCorpus() {
		if !tc.isolated() {
			inputs = append(inputs, input{[]byte(tc.in), tc.newT})
		}
	}
	for _, tc := range encCorpus() {
		if out, err := codec.Candidates[0].Marshal(tc.v); err == nil && tc.v != nil {
			typ := reflect.TypeOf(tc.v)
			inputs = append(inputs, input{out, func() any { return reflect.New(typ).Interface() }})
		}
	}
	for _, c := range codec.Candidates[1:] {
		t.Run(c.Name, func(t *testing.T) {
			var checked, differ int
			for _, in := range inputs {
				for n := range len(in.in) {
					prefix := in.in[:n]
					wantErr := safeUnmarshal(codec.Candidates[0], prefix, in.newT())
					gotErr := safeUnmarshal(c, prefix, in.newT())
					checked++
					if gotErr != nil && strings.HasPrefix(gotErr.Error(), "PANIC") {
						t.Errorf("%q: %v", prefix, gotErr)
						continue
					}
					if (wantErr == nil) != (gotErr == nil) {
						differ++
						if differ <= 3 {
							t.Logf("%q: encoding/json %s, %s %s", prefix, errString(wantErr), c.Name, errString(gotErr))
						}
					}
				}
			}
			t.Logf("%d prefixes, %d where failing or not differs from encoding/json", checked, differ)
			if differ != 0 {
				t.Errorf("%d prefixes differ from encoding/json", differ)
			}
		})
	}
}
