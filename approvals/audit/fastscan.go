package audit

import (
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

// scanCanonical is the quick path of scanTop, for lines already in
// canonical form (every line signoff writes). It reports true, with f
// filled exactly as scanFull fills it and f.canonical set, only when the
// line is well-formed and scanFull would call it canonical. It never
// explains: at anything else (white space, a member out of order or
// repeated, an escape or number RFC 8785 would not write, a member name
// that is not plain ASCII, a syntax error, too deep a nesting) it reports
// false and
// scanTop asks scanFull, so every rejection and every "not canonical" is
// still scanFull's.
//
// It is quicker than scanFull because in canonical form every token is
// where the grammar says, with nothing between tokens: no white space to
// skip, no canonical state to track, and it finds the end of a string
// eight bytes at a time.
func scanCanonical(line []byte, f *topFields) bool { return scanQuick(line, f, false) }

// scanQuick is scanCanonical, and with skipHex it is the Verifier's
// quicker version of it: the values of the top-level hash and prev, when
// each is a string with 64 bytes between its quotes, are taken as such
// without reading them (they are a quarter of a typical line). The result is
// then scanCanonical's only if both values are 64 lower-case hex digits: the
// Verifier proves it by finding them equal to the hash it computed and to
// the previous record's, and scans the line again with scanTop if either
// differs, so a line with anything else there is never judged on this scan.
func scanQuick(line []byte, f *topFields, skipHex bool) bool {
	*f = topFields{}
	if len(line) == 0 || line[0] != '{' {
		return false
	}
	end := canonObject(line, 0, 1, f, skipHex)
	if end != len(line) {
		return false
	}
	f.canonical = true
	return true
}

// The canon* functions scan the value at b[i] and return the index just
// after it, or -1 when the value is not certainly canonical and
// well-formed. depth is as in scanner.
//
// Strings are most of a record and most of them are plain ASCII, so
// canonObject and canonArray find a string's end with the inlined plainEnd
// and call canonString only for the rest of a string with an escape or a
// non-ASCII character: per string, a call is a good part of the cost.

func canonValue(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return canonString(b, i+1)
	case '{':
		return canonObject(b, i, depth+1, nil, false)
	case '[':
		return canonArray(b, i, depth+1)
	case 't':
		return canonLiteral(b, i, "true")
	case 'f':
		return canonLiteral(b, i, "false")
	case 'n':
		return canonLiteral(b, i, "null")
	}
	return canonNumber(b, i)
}

// canonObject scans the object at b[i]; with top set it records the
// members there (the record's top level), skipping hash and prev as
// scanQuick says when skipHex is set. Member names must be plain
// ASCII (no escapes: those are left to scanFull) and strictly ascending,
// so none repeats.
func canonObject(b []byte, i, depth int, top *topFields, skipHex bool) int {
	if depth > maxNesting {
		return -1
	}
	i++
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	prevStart, prevEnd := -1, -1
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		ks := i
		ke := plainEnd(b, i+1)
		if ke >= len(b) || b[ke] != '"' {
			return -1
		}
		if prevStart >= 0 && !lessASCII(b[prevStart:prevEnd], b[ks+1:ke]) {
			return -1
		}
		prevStart, prevEnd = ks+1, ke
		ke += 2 // past the quote and the colon
		if ke > len(b) || b[ke-1] != ':' {
			return -1
		}
		ve := ke
		if skipHex && ke-ks == 7 && ve+66 <= len(b) && b[ve] == '"' && b[ve+65] == '"' &&
			(string(b[ks+1:ks+5]) == "hash" || string(b[ks+1:ks+5]) == "prev") {
			ve += 66
		} else {
			ve = canonElement(b, ve, depth)
		}
		if ve < 0 || ve >= len(b) {
			return -1
		}
		if top != nil && top.member(b, ks, ke-1, ke, ve, false) != nil {
			return -1
		}
		switch b[ve] {
		case ',':
			i = ve + 1
		case '}':
			return ve + 1
		default:
			return -1
		}
	}
}

// canonElement returns the end of the canonical value that starts at i, or
// -1. A string without escapes or non-ASCII bytes (the usual case) ends at
// the first quote plainEnd finds; anything else is checked by canonString
// from where plainEnd stopped, or by canonValue.
func canonElement(b []byte, i, depth int) int {
	if i < len(b) && b[i] == '"' {
		e := plainEnd(b, i+1)
		if e < len(b) && b[e] == '"' {
			return e + 1
		}
		return canonString(b, e)
	}
	return canonValue(b, i, depth)
}

// lessASCII reports whether a sorts before b; for ASCII names that is
// byte order, as compareUTF16 would say. (Member names are short, so a
// loop beats a call to bytes.Compare.)
func lessASCII(a, b []byte) bool {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

func canonArray(b []byte, i, depth int) int {
	if depth > maxNesting {
		return -1
	}
	i++
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		ve := canonElement(b, i, depth)
		if ve < 0 || ve >= len(b) {
			return -1
		}
		switch b[ve] {
		case ',':
			i = ve + 1
		case ']':
			return ve + 1
		default:
			return -1
		}
	}
}

func canonLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// canonNumber accepts what scanner.number calls canonical: an integer of
// at most 15 digits, without leading zeros, other than -0.
func canonNumber(b []byte, i int) int {
	neg := b[i] == '-'
	if neg {
		i++
	}
	start := i
	if i < len(b) && b[i] == '0' {
		if neg {
			return -1
		}
		i++
	} else {
		for i < len(b) && b[i]-'0' < 10 {
			i++
		}
	}
	if i == start || i-start > 15 {
		return -1
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		return -1
	}
	return i
}

// plainEnd returns the index of the first byte at or after i that is not
// strPlain, or of the first of the last 7 bytes of b it reaches (those it
// leaves to canonString). It is small enough to be inlined.
func plainEnd(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	return i
}

// canonString scans the rest of a string from b[i] (inside it) and returns
// the index after its closing quote. It accepts exactly what scanner.str
// accepts without clearing canonical.
func canonString(b []byte, i int) int {
	for {
		if i = plainEnd(b, i); i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case strPlain[c]: // near the end of b
			i++
		case c == '"':
			return i + 1
		case c == '\\':
			if i = canonEscape(b, i); i < 0 {
				return -1
			}
		case c < utf8.RuneSelf: // a control character
			return -1
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return -1
			}
			i += size
		}
	}
}

// canonEscape scans the escape whose backslash is at b[i], one of those
// RFC 8785 writes: \" \\ \b \f \n \r \t, and \u00xx (lower-case hex) for
// the other control characters.
func canonEscape(b []byte, i int) int {
	if i+1 >= len(b) {
		return -1
	}
	switch b[i+1] {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		return i + 2
	case 'u':
	default:
		return -1
	}
	if i+6 > len(b) || b[i+2] != '0' || b[i+3] != '0' || (b[i+4] != '0' && b[i+4] != '1') {
		return -1
	}
	var lo byte
	switch c := b[i+5]; {
	case c >= '0' && c <= '9':
		lo = c - '0'
	case c >= 'a' && c <= 'f':
		lo = c - 'a' + 10
	default:
		return -1
	}
	switch (b[i+4]-'0')<<4 | lo {
	case '\b', '\t', '\n', '\f', '\r':
		return -1 // these have short escapes
	}
	return i + 6
}
