// Package uuidx formats, checks and parses UUIDs in their canonical
// 8-4-4-4-12 text form, for the packages that store event IDs as 16 bytes
// or make IDs of their own.
package uuidx

import "encoding/hex"

// Format returns u in canonical lower-case form.
func Format(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// Valid reports whether s is a UUID in canonical form, in either case.
func Valid(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// Parse returns the bytes of s, a UUID in canonical form; ok is false
// when s is not one.
func Parse(s string) (u [16]byte, ok bool) {
	if !Valid(s) {
		return u, false
	}
	var h [32]byte
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			h[n] = s[i]
			n++
		}
	}
	_, err := hex.Decode(u[:], h[:])
	return u, err == nil
}
