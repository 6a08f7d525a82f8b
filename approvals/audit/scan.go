package audit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// This file holds a small JSON scanner made for audit lines. In one pass over
// a line it
//
//   - validates the JSON (RFC 8259, strings must be valid UTF-8 and may not
//     hold unpaired surrogate escapes, as RFC 8785 requires);
//   - decides whether the line is already in RFC 8785 canonical form, using a
//     conservative test: "canonical" is only claimed when the bytes are
//     certainly what gowebpki/jcs would output for them (no insignificant
//     whitespace, members strictly sorted by UTF-16 code units at every level,
//     strings with exactly the escapes RFC 8785 emits, integers of at most 15
//     digits and no "-0"). Anything unusual — floats, exponents, big
//     integers, escapes RFC 8785 would not write — is reported as "not
//     canonical" and the caller canonicalizes the full record with jcs
//     instead, which is always correct, only slower. FuzzScanner checks
//     that jcs leaves every line the scanner calls canonical unchanged;
//   - locates the top-level members the audit code needs (seq, prev, hash,
//     type, …) without decoding the rest, and refuses a top-level member
//     that appears twice.
//
// The scanner never allocates on well-formed canonical records.

// maxNesting bounds how deeply arrays and objects may nest in a record.
// signoff writes at most a handful of levels; the bound keeps recursion
// (and the work an adversarial line can cause) small.
const maxNesting = 128

// span is the position of a value in a line: bytes [s, e). A zero span
// (e == 0) means the member is absent; a real value never ends at 0.
type span struct{ s, e int }

func (sp span) ok() bool { return sp.e > 0 }

// field indexes the top-level members the audit code reads.
type field int

const (
	fSeq field = iota
	fTime
	fType
	fRequestID
	fAction
	fActor
	fSource
	fData
	fPrev
	fHash
	numFields
)

// fieldNames are the JSON names of the fields, indexed by field.
var fieldNames = [numFields]string{
	fSeq: "seq", fTime: "time", fType: "type", fRequestID: "request_id",
	fAction: "action", fActor: "actor", fSource: "source", fData: "data",
	fPrev: "prev", fHash: "hash",
}

func lookupField(name []byte) (field, bool) {
	switch string(name) { // no allocation: the compiler compares in place
	case "seq":
		return fSeq, true
	case "time":
		return fTime, true
	case "type":
		return fType, true
	case "request_id":
		return fRequestID, true
	case "action":
		return fAction, true
	case "actor":
		return fActor, true
	case "source":
		return fSource, true
	case "data":
		return fData, true
	case "prev":
		return fPrev, true
	case "hash":
		return fHash, true
	}
	return 0, false
}

// topFields is what scanTop finds in a line.
type topFields struct {
	// canonical reports that the whole line is certainly in RFC 8785
	// canonical form (see the file comment).
	canonical bool
	// val holds each known member's value span.
	val [numFields]span
	// key holds each known member's key start (the index of its opening
	// quote), valid when val is.
	key [numFields]int
	// unknown holds the names of top-level members that are not known
	// fields, to refuse repeats of those too.
	unknown nameSet
}

// nameSet is a set of member names: a short list, turned into a map when
// an object has many members, so that finding repeats stays linear.
type nameSet struct {
	list [][]byte
	buf  [4][]byte
	m    map[string]struct{}
}

func (n *nameSet) len() int { return len(n.list) + len(n.m) }

// add adds name and reports whether it was new.
func (n *nameSet) add(name []byte) bool {
	if n.m != nil {
		if _, dup := n.m[string(name)]; dup {
			return false
		}
		n.m[string(name)] = struct{}{}
		return true
	}
	for _, u := range n.list {
		if bytes.Equal(u, name) {
			return false
		}
	}
	if len(n.list) < 16 {
		if n.list == nil {
			n.list = n.buf[:0]
		}
		n.list = append(n.list, name)
		return true
	}
	n.m = make(map[string]struct{}, 2*len(n.list))
	for _, u := range n.list {
		n.m[string(u)] = struct{}{}
	}
	n.list = nil
	n.m[string(name)] = struct{}{}
	return true
}

// syntaxError is a malformed line.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg)
}

// duplicateKeyError is an object that repeats a member name. It is never
// accepted: JSON readers disagree on which of the values counts (Go and
// Python take the last, some readers the first, some refuse), so a record
// with a repeated member could show one thing to the verifier and another
// to a person.
type duplicateKeyError struct{ key string }

func (e *duplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate key %q", e.key)
}

// errNotObject is a line whose top-level value is not an object.
var errNotObject = errors.New("a record must be a JSON object")

// scanner walks one line. canonical starts true and is cleared at the first
// sign that the line is not in canonical form.
type scanner struct {
	b         []byte
	canonical bool
}

// scanTop validates line and fills f. An error means the line is not a
// well-formed record object (or repeats a top-level member, or, in a part
// of the line that was still canonical, any member).
//
// Lines signoff wrote take the quick path, scanCanonical (fastscan.go),
// which accepts only what scanFull would call canonical and fills f the
// same way; anything else, well-formed or not, gets scanFull's answer.
func scanTop(line []byte, f *topFields) error {
	if scanCanonical(line, f) {
		return nil
	}
	return scanFull(line, f)
}

// scanFull is scanTop for any line: it tracks whether the line is
// canonical as it goes and explains what is wrong with a bad one.
func scanFull(line []byte, f *topFields) error {
	*f = topFields{}
	s := scanner{b: line, canonical: true}
	i := s.ws(0)
	if i >= len(line) {
		return &syntaxError{off: i, msg: "empty line"}
	}
	if line[i] != '{' {
		return errNotObject
	}
	end, err := s.object(i, 1, f)
	if err != nil {
		return err
	}
	if i = s.ws(end); i != len(line) {
		return &syntaxError{off: i, msg: "unexpected data after the record"}
	}
	f.canonical = s.canonical
	return nil
}

// member records a top-level member, refusing repeated names.
func (f *topFields) member(line []byte, ks, ke, vs, ve int, esc bool) error {
	name := line[ks+1 : ke-1]
	if esc {
		d, err := decodeString(line[ks:ke])
		if err != nil {
			return err
		}
		name = d
	}
	if k, ok := lookupField(name); ok {
		if f.val[k].ok() {
			return &duplicateKeyError{key: fieldNames[k]}
		}
		f.val[k] = span{vs, ve}
		f.key[k] = ks
		return nil
	}
	if !f.unknown.add(name) {
		return &duplicateKeyError{key: string(name)}
	}
	return nil
}

// ws skips insignificant whitespace from i; any at all makes the line
// non-canonical.
func (s *scanner) ws(i int) int {
	start := i
	for i < len(s.b) {
		switch s.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	if i != start {
		s.canonical = false
	}
	return i
}

// value scans the value starting at i (no leading whitespace) and returns
// the index just after it.
func (s *scanner) value(i, depth int) (int, error) {
	if i >= len(s.b) {
		return i, &syntaxError{off: i, msg: "unexpected end of line, a value was expected"}
	}
	switch c := s.b[i]; {
	case c == '"':
		end, _, err := s.str(i)
		return end, err
	case c == '{':
		return s.object(i, depth+1, nil)
	case c == '[':
		return s.array(i, depth+1)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number(i)
	default:
		return i, &syntaxError{off: i, msg: fmt.Sprintf("unexpected character %q", rune(c))}
	}
}

func (s *scanner) literal(i int, lit string) (int, error) {
	if len(s.b)-i < len(lit) || string(s.b[i:i+len(lit)]) != lit {
		return i, &syntaxError{off: i, msg: "invalid literal"}
	}
	return i + len(lit), nil
}

// number scans an RFC 8259 number. Canonical (as far as this scanner
// claims) are integers of up to 15 digits other than -0: every such integer
// is exactly representable as an IEEE 754 double and RFC 8785 prints it back
// digit for digit.
func (s *scanner) number(i int) (int, error) {
	b := s.b
	start := i
	if b[i] == '-' {
		i++
	}
	digitsStart := i
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, &syntaxError{off: i, msg: "invalid number"}
	}
	digits := i - digitsStart
	plain := true
	if i < len(b) && b[i] == '.' {
		plain = false
		j := i + 1
		if i = skipDigits(b, j); i == j {
			return i, &syntaxError{off: i, msg: "invalid number: digits expected after '.'"}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		plain = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := i
		if i = skipDigits(b, j); i == j {
			return i, &syntaxError{off: i, msg: "invalid number: digits expected in the exponent"}
		}
	}
	if !plain || digits > 15 || (b[start] == '-' && b[digitsStart] == '0') {
		s.canonical = false
	}
	return i, nil
}

// skipDigits returns the end of the run of decimal digits that starts at
// b[i] (i itself if there is none).
func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// strPlain marks the bytes that stand for themselves in a string and keep
// it canonical: printable ASCII other than '"' and '\\'.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// SWAR constants: bytes of 0x01, 0x80, '"', '\\' and 0x20 in every lane.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
	lanesQ  = lanes01 * '"'
	lanesBS = lanes01 * '\\'
	lanes20 = lanes01 * 0x20
)

// plain8 reports whether all 8 bytes of x are strPlain: none is '"', '\\',
// a control character or non-ASCII.
func plain8(x uint64) bool { return special8(x) == 0 }

// special8 marks the bytes of x (little-endian lanes) that are not
// strPlain with their top bit (0x80). The marks are the classic hasZero and
// hasLess bit tricks: each is non-zero exactly when some byte matches, and
// its lowest mark is exact (a borrow only runs upwards from a byte that
// matched), so bits.TrailingZeros64(special8(x))/8 is the index of the
// first byte that is not plain. Marks above that one may be spurious.
func special8(x uint64) uint64 {
	quote := x ^ lanesQ
	bs := x ^ lanesBS
	special := (quote - lanes01) &^ quote // a zero byte: '"'
	special |= (bs - lanes01) &^ bs       // a zero byte: '\\'
	special |= (x - lanes20) | x          // a byte < 0x20 or >= 0x80
	return special & lanes80
}

// str scans the string whose opening quote is at i and returns the index
// after its closing quote and whether it holds any escape.
func (s *scanner) str(i int) (end int, esc bool, err error) {
	b := s.b
	i++
	for {
		for i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, esc, &syntaxError{off: i, msg: "unterminated string"}
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			n, err := s.escape(i)
			if err != nil {
				return n, esc, err
			}
			i = n
		case c < 0x20:
			return i, esc, &syntaxError{off: i, msg: "control character in a string (it must be escaped)"}
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, esc, &syntaxError{off: i, msg: "invalid UTF-8 in a string"}
			}
			i += size
		}
	}
}

// escape scans the escape sequence whose backslash is at i. RFC 8785 writes
// \" \\ \b \f \n \r \t and \u00xx (lower-case hex) for the other control
// characters; every other escape is valid JSON but not canonical.
func (s *scanner) escape(i int) (int, error) {
	b := s.b
	if i+1 >= len(b) {
		return i, &syntaxError{off: i, msg: "unterminated escape"}
	}
	switch b[i+1] {
	case '"', '\\', 'b', 'f', 'n', 'r', 't':
		return i + 2, nil
	case '/':
		s.canonical = false
		return i + 2, nil
	case 'u':
	default:
		return i, &syntaxError{off: i, msg: "invalid escape"}
	}
	u, ok := hex4(b, i+2)
	if !ok {
		return i, &syntaxError{off: i, msg: "invalid \\u escape"}
	}
	switch {
	case u >= 0xD800 && u <= 0xDBFF:
		// A high surrogate must be followed by an escaped low surrogate.
		if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
			return i, &syntaxError{off: i, msg: "unpaired surrogate in a \\u escape"}
		}
		lo, ok := hex4(b, i+8)
		if !ok || lo < 0xDC00 || lo > 0xDFFF {
			return i, &syntaxError{off: i, msg: "unpaired surrogate in a \\u escape"}
		}
		s.canonical = false
		return i + 12, nil
	case u >= 0xDC00 && u <= 0xDFFF:
		return i, &syntaxError{off: i, msg: "unpaired surrogate in a \\u escape"}
	}
	if u >= 0x20 || u == '\b' || u == '\t' || u == '\n' || u == '\f' || u == '\r' ||
		(b[i+5] >= 'A' && b[i+5] <= 'F') {
		// Not the form RFC 8785 emits: \u00xx in lower case, and only for
		// the control characters without a short escape. (For u < 0x20 the
		// first three digits are "000" or "001", so only the last can be a
		// letter.)
		s.canonical = false
	}
	return i + 6, nil
}

// hex4 parses the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var u rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			u = u<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			u = u<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			u = u<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return u, true
}

func (s *scanner) array(i, depth int) (int, error) {
	i, done, err := s.enter(i, depth, ']')
	for !done && err == nil {
		if i, err = s.value(i, depth); err == nil {
			i, done, err = s.after(i, ']', "array")
		}
	}
	return i, err
}

// enter checks the nesting depth of the array or object whose opening
// bracket is at i, and skips that bracket and the white space after it.
// done says the container is empty: i is then past closer, its end.
func (s *scanner) enter(i, depth int, closer byte) (_ int, done bool, _ error) {
	if depth > maxNesting {
		return i, false, &syntaxError{off: i, msg: fmt.Sprintf("nested deeper than %d levels", maxNesting)}
	}
	i = s.ws(i + 1)
	if i < len(s.b) && s.b[i] == closer {
		return i + 1, true, nil
	}
	return i, false, nil
}

// after reads what follows an element of an array or object (kind) ending
// in closer, from i: a comma, after which i is the next element, or the
// end (done), after which i is past it.
func (s *scanner) after(i int, closer byte, kind string) (_ int, done bool, _ error) {
	i = s.ws(i)
	if i >= len(s.b) {
		return i, false, &syntaxError{off: i, msg: "unterminated " + kind}
	}
	switch s.b[i] {
	case ',':
		return s.ws(i + 1), false, nil
	case closer:
		return i + 1, true, nil
	default:
		return i, false, &syntaxError{off: i, msg: "',' or '" + string(closer) + "' expected"}
	}
}

// object scans the object at i. With top set, it reports every member to
// top (the record's top level).
func (s *scanner) object(i, depth int, top *topFields) (int, error) {
	i, done, err := s.enter(i, depth, '}')
	if err != nil {
		return i, err
	}
	prevStart, prevEnd, prevEsc := -1, -1, false
	for !done {
		if i >= len(s.b) || s.b[i] != '"' {
			return i, &syntaxError{off: i, msg: "a member name was expected"}
		}
		ks := i
		ke, esc, err := s.str(i)
		if err != nil {
			return ke, err
		}
		if s.canonical && prevStart >= 0 {
			// Canonical members are strictly ascending; an equal name is a
			// duplicate whatever the rest of the line looks like.
			c, err := compareKeys(s.b[prevStart:prevEnd], prevEsc, s.b[ks:ke], esc)
			if err != nil {
				return ks, err
			}
			if c == 0 {
				name, _ := decodeString(s.b[ks:ke])
				return ks, &duplicateKeyError{key: string(name)}
			}
			if c > 0 {
				s.canonical = false
			}
		}
		prevStart, prevEnd, prevEsc = ks, ke, esc
		i = s.ws(ke)
		if i >= len(s.b) || s.b[i] != ':' {
			return i, &syntaxError{off: i, msg: "':' expected after a member name"}
		}
		vs := s.ws(i + 1)
		ve, err := s.value(vs, depth)
		if err != nil {
			return ve, err
		}
		if top != nil {
			if err := top.member(s.b, ks, ke, vs, ve, esc); err != nil {
				return ks, err
			}
		}
		if i, done, err = s.after(ve, '}', "object"); err != nil {
			return i, err
		}
	}
	return i, nil
}

// compareKeys compares two member names (quoted, as in the line) in RFC
// 8785 order: by their UTF-16 code units.
func compareKeys(a []byte, aEsc bool, b []byte, bEsc bool) (int, error) {
	if aEsc || bEsc {
		da, err := decodeString(a)
		if err != nil {
			return 0, err
		}
		db, err := decodeString(b)
		if err != nil {
			return 0, err
		}
		return compareUTF16(da, db), nil
	}
	return compareUTF16(a[1:len(a)-1], b[1:len(b)-1]), nil
}

// compareUTF16 compares two valid UTF-8 strings by their UTF-16 code
// units. That is byte order, except that code points U+E000…U+FFFF sort
// after the supplementary planes (whose UTF-16 surrogates are
// 0xD800…0xDFFF).
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	for i > 0 && a[i]&0xC0 == 0x80 { // back to the start of the rune
		i--
	}
	ra, _ := utf8.DecodeRune(a[i:])
	rb, _ := utf8.DecodeRune(b[i:])
	return int(utf16Weight(ra)) - int(utf16Weight(rb))
}

func utf16Weight(r rune) rune {
	if r >= 0xE000 && r <= 0xFFFF {
		return r + 0x110000
	}
	return r
}

// decodeString decodes a quoted JSON string that the scanner validated.
func decodeString(q []byte) ([]byte, error) {
	if bytes.IndexByte(q, '\\') < 0 {
		return q[1 : len(q)-1], nil
	}
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return nil, fmt.Errorf("decode string: %w", err)
	}
	return []byte(s), nil
}

// stringValue returns the decoded string at sp, or ok=false when the value
// there is not a string.
func stringValue(line []byte, sp span) (string, bool) {
	if !sp.ok() || line[sp.s] != '"' {
		return "", false
	}
	d, err := decodeString(line[sp.s:sp.e])
	if err != nil {
		return "", false
	}
	return string(d), true
}

// forEachMember calls fn for every member of the object at obj, a value the
// scanner validated, refusing repeated names. It is for the small nested
// objects the audit code reads (actor, a checkpoint's data).
func forEachMember(line []byte, obj span, fn func(name string, val span) error) error {
	if !obj.ok() || line[obj.s] != '{' {
		return errors.New("not a JSON object")
	}
	sub := line[:obj.e]
	s := scanner{b: sub, canonical: true}
	var seen nameSet
	i := s.ws(obj.s + 1)
	if i < len(sub) && sub[i] == '}' {
		return nil
	}
	for {
		ke, _, err := s.str(i)
		if err != nil {
			return err
		}
		name, err := decodeString(sub[i:ke])
		if err != nil {
			return err
		}
		if !seen.add(name) {
			return &duplicateKeyError{key: string(name)}
		}
		vs := s.ws(s.ws(ke) + 1) // skip ':' and whitespace
		ve, err := s.value(vs, 2)
		if err != nil {
			return err
		}
		if err := fn(string(name), span{vs, ve}); err != nil {
			return err
		}
		i = s.ws(ve)
		if i >= len(sub) || sub[i] == '}' {
			return nil
		}
		i = s.ws(i + 1) // skip ','
	}
}

// hashlessParts returns the bytes hashed for a record, in two parts: canon,
// a canonical line, without its top-level hash member (and the comma that
// separated it from its neighbour).
func hashlessParts(canon []byte, f *topFields) (a, b []byte) {
	ks, ve := f.key[fHash], f.val[fHash].e
	if ks > 0 && canon[ks-1] == ',' {
		return canon[:ks-1], canon[ve:]
	}
	if ve < len(canon) && canon[ve] == ',' {
		return canon[:ks], canon[ve+1:]
	}
	return canon[:ks], canon[ve:]
}
