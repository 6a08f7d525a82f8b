// Package text cuts strings to a size without splitting a character. It is
// the one place signoff shortens text: values quoted in errors and logs,
// fields of audit records, card texts.
//
// Sizes count bytes (Cut, Truncate) or runes (CutRunes, TruncateRunes).
// Invalid UTF-8 is not an error: each byte that does not start a valid
// sequence counts as one character, as in a for-range loop, so a cut never
// splits a valid sequence and never backs up over garbage. The functions do
// not repair invalid input; what they keep of it stays as it was.
package text

import "unicode/utf8"

// Ellipsis is what Truncate and TruncateRunes append where they cut.
const Ellipsis = "…"

// Cut returns the longest prefix of s that is at most n bytes long and does
// not end inside a character. It returns s when s fits, "" when n <= 0.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	// Only a valid sequence can straddle the cut, and it starts at most
	// utf8.UTFMax-1 bytes before it. (No valid sequence contains another
	// one's first byte, so the start found here is also where a for-range
	// loop would see a character begin.)
	for i := n - 1; i >= 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if _, size := utf8.DecodeRuneInString(s[i:]); i+size > n {
				return s[:i]
			}
			break
		}
	}
	return s[:n]
}

// CutRunes returns the first n characters of s: s when it has no more,
// "" when n <= 0.
func CutRunes(s string, n int) string {
	if n <= 0 {
		return ""
	}
	count := 0
	for i := range s {
		if count == n {
			return s[:i]
		}
		count++
	}
	return s
}

// Truncate is Cut followed by Ellipsis when anything was cut off: at most n
// bytes of s, then the marker (so the result may exceed n by
// len(Ellipsis)).
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Cut(s, n) + Ellipsis
}

// TruncateRunes is CutRunes followed by Ellipsis when anything was cut off:
// at most n characters of s, then the marker.
func TruncateRunes(s string, n int) string {
	cut := CutRunes(s, n)
	if len(cut) == len(s) {
		return s
	}
	return cut + Ellipsis
}
