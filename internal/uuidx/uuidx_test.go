package uuidx

import "testing"

func TestFormatParse(t *testing.T) {
	t.Parallel()
	u := [16]byte{0x01, 0x8f, 0x4e, 0x2a, 0xbc, 0xde, 0x7f, 0x01, 0x8a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78}
	const want = "018f4e2a-bcde-7f01-8abc-def012345678"
	if got := Format(u); got != want {
		t.Fatalf("Format = %q, want %q", got, want)
	}
	for _, s := range []string{want, "018F4E2A-BCDE-7F01-8ABC-DEF012345678"} {
		got, ok := Parse(s)
		if !ok || got != u {
			t.Errorf("Parse(%q) = %x, %v; want %x, true", s, got, ok, u)
		}
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"018f4e2a-bcde-7f01-8abc-def012345678", true},
		{"018F4E2A-BCDE-7F01-8ABC-DEF012345678", true},
		{"", false},
		{"018f4e2abcde7f018abcdef012345678", false},     // no dashes
		{"018f4e2a-bcde-7f01-8abc-def01234567", false},  // short
		{"018f4e2a-bcde-7f01-8abc-def01234567g", false}, // not hex
		{"018f4e2a+bcde-7f01-8abc-def012345678", false}, // wrong separator
	} {
		if got := Valid(tt.s); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.s, got, tt.want)
		}
		if _, ok := Parse(tt.s); ok != tt.want {
			t.Errorf("Parse(%q) ok = %v, want %v", tt.s, ok, tt.want)
		}
	}
}
