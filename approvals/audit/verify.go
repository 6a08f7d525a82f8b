package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gowebpki/jcs"
)

// MaxLineBytes is the longest export line VerifyJSONL accepts.
const MaxLineBytes = 1 << 20

// ErrNoCheckpoint is the cause (errors.Is) of the error Finish returns when a
// public key was given but the log holds no checkpoint to check it against.
var ErrNoCheckpoint = errors.New("no signed checkpoint found")

// ChainError is the first problem found in an audit log.
type ChainError struct {
	// Seq is the seq at which the chain breaks: the seq the bad line
	// should have had (its own seq whenever the line is where it belongs;
	// the expected seq for a line that is missing, out of place or cannot
	// be parsed). It is 0 for a problem with the log as a whole.
	Seq uint64
	// Line is the 1-based position of the bad record in the input (the
	// line number in a JSON-lines file, the record's position in a stream),
	// or 0 for a problem with the log as a whole.
	Line int
	// Reason says what is wrong, for people.
	Reason string
	// Err is the underlying cause, if any.
	Err error
}

// Error renders e as "audit record seq 7 (line 7): <reason>".
func (e *ChainError) Error() string {
	if e.Line == 0 {
		return "audit log: " + e.Reason
	}
	return fmt.Sprintf("audit record seq %d (line %d): %s", e.Seq, e.Line, e.Reason)
}

// Unwrap returns the underlying cause.
func (e *ChainError) Unwrap() error { return e.Err }

// VerifyOptions configures a Verifier.
type VerifyOptions struct {
	// PublicKey, when set, is the checkpoint signing key's public half:
	// every checkpoint's signature must verify with it, and a log without
	// any checkpoint fails. Without it checkpoints are still checked against
	// the chain, but their signatures are not.
	PublicKey ed25519.PublicKey
	// Strict makes Finish fail (ErrUnsignedTail) when records follow the
	// last checkpoint whose signature verified: nothing vouches for them,
	// so a record forged and appended after that checkpoint would pass
	// otherwise. A log written by a server that shut down cleanly ends with
	// a checkpoint and passes. Strict needs PublicKey; without it Finish
	// always fails.
	Strict bool
	// Anchors are checkpoint records known from outside the log (published
	// as they were made; see ReadAnchors). The log must hold each of them
	// unchanged, at its seq (ErrAnchorMismatch otherwise), and must reach
	// the seq of every one (ErrTruncated otherwise), so a log cut after an
	// earlier checkpoint, or rewritten, fails. They may come in any order.
	Anchors []Anchor
}

// The causes (errors.Is) of the errors Strict and Anchors add.
var (
	// ErrUnsignedTail: records follow the last signed checkpoint.
	ErrUnsignedTail = errors.New("records follow the last signed checkpoint")
	// ErrAnchorMismatch: the log's record at an anchor's seq is not the
	// anchor.
	ErrAnchorMismatch = errors.New("the log differs from an anchor")
	// ErrTruncated: the log ends before an anchor's seq.
	ErrTruncated = errors.New("the log was truncated")
)

// Summary describes a verified (or partly verified) log.
type Summary struct {
	// Records is the number of records verified, checkpoints included.
	Records int
	// LastSeq and LastHash are the seq and hash of the last record verified.
	LastSeq  uint64
	LastHash string
	// Checkpoints is the number of checkpoints whose signature verified
	// with VerifyOptions.PublicKey.
	Checkpoints int
	// CheckpointsUnchecked is the number of checkpoints whose signature was
	// not checked because no public key was given.
	CheckpointsUnchecked int
	// SignedThrough is the highest seq covered by a verified checkpoint
	// signature: records 1…SignedThrough are vouched for by the key holder.
	// Records after it are only as trustworthy as the file they came in.
	SignedThrough uint64
	// LastCheckpoint is the seq of the last checkpoint record whose
	// signature verified (SignedThrough + 1), or 0. Records after it are
	// the unsigned tail VerifyOptions.Strict refuses.
	LastCheckpoint uint64
	// Anchors is the number of VerifyOptions.Anchors found in the log
	// unchanged.
	Anchors int
	// Recanonicalized counts the records that were not byte-for-byte in
	// canonical form (the export was re-serialized by another tool) and
	// were verified through full RFC 8785 canonicalization.
	Recanonicalized int
}

// Verifier checks an audit log one record at a time, in order, in constant
// memory. It checks, for every record, that
//
//   - the line is one well-formed JSON object with no repeated member;
//   - its hash is the hex SHA-256 of its RFC 8785 form without "hash"
//     (otherwise the record was changed after it was written);
//   - its seq is the previous record's seq + 1, starting at 1 (otherwise a
//     record was deleted, duplicated or moved);
//   - its prev is the previous record's hash, 64 zeros for seq 1 (otherwise
//     a record was inserted or replaced);
//   - for a checkpoint, that its data is {seq, hash, signature, key_id} with
//     seq and hash those of the record just before it, and, with a public
//     key, that the signature verifies;
//   - for a record at the seq of an anchor, that it is the anchor: a
//     checkpoint with the anchor's hash (both hashes were checked against
//     their records, so the records are identical).
//
// Finish then checks the log as a whole: with a public key, that it holds a
// checkpoint; that it reaches every anchor; with Strict, that it ends with a
// signed checkpoint.
//
// The first problem is returned as a *ChainError, by Add and then by every
// later call. Feed it with the lines of an unfiltered export or the records
// streamed from the store; a filtered export has gaps by design and does not
// verify. A Verifier is not safe for concurrent use.
//
// Speed: signoff writes every line in canonical form, so the verifier
// checks that a line is canonical while it scans it (see scan.go and
// fastscan.go) and then hashes the line's own bytes minus the hash member. Only lines that are not
// canonical are parsed and re-serialized with gowebpki/jcs.
//
// On repeated members: a record whose line repeats a member is always
// refused, though the hash check alone would not need that for records
// signoff wrote: a line passes the fast path only when it is canonical, and
// canonical members are strictly sorted, so a repeat cannot pass as
// canonical (the scanner reports it as soon as it compares the two equal
// names); on the slow path jcs refuses repeats. But a log forged end to end
// (no public key given, or the records after the last checkpoint) could
// carry a self-consistent hash over a line such as {…"type":"vote.approve",
// …"type":"vote.deny"…}. Readers disagree about which value such a line
// means, so the verifier refuses it outright: "verified" then means the same
// thing to every JSON reader.
type Verifier struct {
	opts VerifyOptions
	kid  string
	err  error

	line     int
	lastSeq  uint64
	lastHash [64]byte
	sum      Summary

	// lastSignedLine is the line of the last checkpoint whose signature
	// verified.
	lastSignedLine int
	// anchors are VerifyOptions.Anchors sorted by seq; anchors[nextAnchor]
	// is the first one not yet reached.
	anchors    []Anchor
	nextAnchor int

	buf    []byte // the line without its hash member, reused
	digest [sha256.Size]byte
	hexsum [64]byte
	f      topFields
}

// NewVerifier returns a Verifier for a log that starts at seq 1.
func NewVerifier(opts VerifyOptions) *Verifier {
	v := &Verifier{opts: opts}
	copy(v.lastHash[:], GenesisPrev)
	if opts.PublicKey != nil {
		v.kid = KeyID(opts.PublicKey)
	}
	if len(opts.Anchors) > 0 {
		v.anchors = slices.Clone(opts.Anchors)
		slices.SortStableFunc(v.anchors, func(a, b Anchor) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return v
}

// fail records the first problem, at the current line.
func (v *Verifier) fail(cause error, format string, args ...any) error {
	v.err = &ChainError{
		Seq:    v.lastSeq + 1,
		Line:   v.line,
		Reason: fmt.Sprintf(format, args...),
		Err:    cause,
	}
	return v.err
}

// Add verifies the next record, line (one export line without its newline;
// Add does not keep it).
func (v *Verifier) Add(line []byte) error {
	if v.err != nil {
		return v.err
	}
	v.line++
	expect := v.lastSeq + 1

	f := &v.f
	canon := line
	// The quick path, for a line signoff wrote: scanQuick leaves hash and
	// prev unread, and matching them here is what proves the scan right.
	// Anything else (or a chain that breaks here) is scanned again in full,
	// so every error below comes from scanTop's view of the line.
	quick := scanQuick(line, f, true) && v.hashMatches(line, f) && v.prevMatches(line, f)
	if !quick {
		if err := scanTop(line, f); err != nil {
			return v.malformed(err)
		}
	}
	if !quick && (!f.canonical || !v.hashMatches(line, f)) {
		// Not canonical (re-serialized by another tool), or the hash of the
		// line as it stands does not match: canonicalize the full record
		// and check again. For a canonical line jcs returns the same bytes,
		// so a mismatch stays a mismatch.
		c, err := jcs.Transform(line)
		if err != nil {
			if strings.HasPrefix(err.Error(), "Duplicate key") {
				return v.fail(err, "%s (JSON readers disagree on which value counts, so the record is refused)", lowerFirst(err.Error()))
			}
			return v.fail(err, "malformed record: %v", err)
		}
		if err := scanTop(c, f); err != nil {
			return v.malformed(err)
		}
		if !isHexString(c, f.val[fHash]) {
			return v.fail(nil, "hash is missing or not 64 lower-case hex digits")
		}
		if !v.hashMatches(c, f) {
			return v.fail(nil, "hash mismatch: record was changed after it was written")
		}
		if !bytes.Equal(c, line) {
			v.sum.Recanonicalized++
		}
		canon = c
	}

	seq, ok := parseSeq(canon, f.val[fSeq])
	if !ok {
		return v.fail(nil, "seq is missing or not a positive integer")
	}
	if seq != expect {
		switch {
		case expect == 1:
			return v.fail(nil, "the log does not start at seq 1: the first record has seq %d (the records before it are missing)", seq)
		case seq > expect:
			return v.fail(nil, "found seq %d where seq %d was expected (record %d is missing: deleted, or records reordered)", seq, expect, expect)
		default:
			return v.fail(nil, "found seq %d again after seq %d (a record was duplicated, or records reordered)", seq, v.lastSeq)
		}
	}
	if !v.prevMatches(canon, f) {
		if !isHexString(canon, f.val[fPrev]) {
			return v.fail(nil, "prev is missing or not 64 lower-case hex digits")
		}
		if expect == 1 {
			return v.fail(nil, "prev of seq 1 is not 64 zeros (the start of the log was replaced)")
		}
		return v.fail(nil, "prev does not match the hash of record %d (a record was inserted or replaced before this one)", v.lastSeq)
	}
	typ := f.val[fType]
	if !typ.ok() || canon[typ.s] != '"' {
		return v.fail(nil, "type is missing or not a string")
	}
	if string(canon[typ.s:typ.e]) == `"`+TypeCheckpoint+`"` {
		if err := v.checkpoint(canon, f, seq); err != nil {
			return err
		}
	}
	if v.nextAnchor < len(v.anchors) && v.anchors[v.nextAnchor].Seq == seq {
		if err := v.matchAnchors(canon, typ, seq); err != nil {
			return err
		}
	}

	v.lastSeq = seq
	copy(v.lastHash[:], v.hexsum[:])
	v.sum.Records++
	return nil
}

func (v *Verifier) malformed(err error) error {
	var dup *duplicateKeyError
	if errors.As(err, &dup) {
		return v.fail(err, "%v (JSON readers disagree on which value counts, so the record is refused)", err)
	}
	return v.fail(err, "malformed record: %v", err)
}

// prevMatches reports whether the prev member of canon is the previous
// record's hash. That is lower-case hex, so a prev equal to it is too: the
// digit check is needed only to explain a mismatch.
func (v *Verifier) prevMatches(canon []byte, f *topFields) bool {
	prev := f.val[fPrev]
	return isQuoted64(canon, prev) && bytes.Equal(canon[prev.s+1:prev.e-1], v.lastHash[:])
}

// hashMatches computes the hash of canon (a canonical line) without its
// hash member into v.hexsum and compares it with the hash member.
func (v *Verifier) hashMatches(canon []byte, f *topFields) bool {
	hs := f.val[fHash]
	if !isQuoted64(canon, hs) {
		return false
	}
	// One contiguous Sum256 rather than two writes into a hash.Hash: the
	// block function then runs once over the bulk and once over the padding,
	// as in a bare hash of the line. Two writes cost an extra call for the
	// block straddling the gap, and Sum copies the state: together more
	// than the copy.
	a, b := hashlessParts(canon, f)
	v.buf = append(append(v.buf[:0], a...), b...)
	v.digest = sha256.Sum256(v.buf)
	for i, c := range v.digest { // hex.Encode, a pair of digits at a time
		*(*[2]byte)(v.hexsum[2*i:]) = hexPairs[c]
	}
	// hexsum is lower-case hex, so equality also proves the member is 64
	// lower-case hex digits.
	return bytes.Equal(v.hexsum[:], canon[hs.s+1:hs.e-1])
}

// checkpointData is a checkpoint record's data member.
type checkpointData struct {
	seq            uint64
	hash, sig, kid string
}

// readCheckpointData reads the data of a checkpoint record (canon, a
// canonical line): exactly seq, hash, signature and key_id, well-typed.
func readCheckpointData(canon []byte, data span) (checkpointData, error) {
	var (
		d    checkpointData
		have int
	)
	err := forEachMember(canon, data, func(name string, val span) error {
		var ok bool
		switch name {
		case "seq":
			d.seq, ok = parseSeq(canon, val)
			if !ok {
				return errors.New("data.seq is not a positive integer")
			}
		case "hash":
			if !isHexString(canon, val) {
				return errors.New("data.hash is not 64 lower-case hex digits")
			}
			d.hash = string(canon[val.s+1 : val.e-1])
		case "signature":
			if d.sig, ok = stringValue(canon, val); !ok {
				return errors.New("data.signature is not a string")
			}
		case "key_id":
			if d.kid, ok = stringValue(canon, val); !ok {
				return errors.New("data.key_id is not a string")
			}
		default:
			return fmt.Errorf("data has an unexpected member %q", name)
		}
		have++
		return nil
	})
	if err == nil && have != 4 {
		err = errors.New("data must hold seq, hash, signature and key_id")
	}
	return d, err
}

// signature decodes d's signature.
func (d checkpointData) signature() ([]byte, error) {
	sig, err := base64.StdEncoding.DecodeString(d.sig)
	if err == nil && len(sig) != ed25519.SignatureSize {
		err = fmt.Errorf("%d bytes, not %d", len(sig), ed25519.SignatureSize)
	}
	return sig, err
}

// checkSignature checks d's signature (sig, decoded) with pub, whose key
// id is kid.
func (d checkpointData) checkSignature(pub ed25519.PublicKey, kid string, sig []byte) error {
	if d.kid != kid {
		return fmt.Errorf("checkpoint was signed by key id %q, but the public key given has key id %q", d.kid, kid)
	}
	if !ed25519.Verify(pub, CheckpointMessage(d.seq, d.hash), sig) {
		return fmt.Errorf("checkpoint signature does not verify with the public key given (key id %s)", kid)
	}
	return nil
}

// checkpoint checks the checkpoint record at seq; its prev already matched.
func (v *Verifier) checkpoint(canon []byte, f *topFields, seq uint64) error {
	d, err := readCheckpointData(canon, f.val[fData])
	if err != nil {
		return v.fail(err, "malformed checkpoint: %v", err)
	}
	if seq == 1 {
		return v.fail(nil, "a checkpoint cannot be the first record: it must cover the record before it")
	}
	if d.seq != seq-1 {
		return v.fail(nil, "checkpoint covers seq %d, but a checkpoint must cover the record just before it (seq %d)", d.seq, seq-1)
	}
	if d.hash != string(v.lastHash[:]) {
		return v.fail(nil, "checkpoint hash does not match the chain's hash at seq %d", d.seq)
	}
	sig, err := d.signature()
	if err != nil {
		return v.fail(err, "malformed checkpoint: data.signature is not a base64 Ed25519 signature")
	}
	if v.opts.PublicKey == nil {
		v.sum.CheckpointsUnchecked++
		return nil
	}
	if err := d.checkSignature(v.opts.PublicKey, v.kid, sig); err != nil {
		return v.fail(nil, "%v", err)
	}
	v.sum.Checkpoints++
	v.sum.SignedThrough = d.seq
	v.sum.LastCheckpoint = seq
	v.lastSignedLine = v.line
	return nil
}

// matchAnchors checks the record at seq (canon, a canonical line whose
// hash is in v.hexsum; typ, its type) against every anchor at seq. Both
// hashes were checked against their records' content, so equal hashes mean
// identical records.
func (v *Verifier) matchAnchors(canon []byte, typ span, seq uint64) error {
	for ; v.nextAnchor < len(v.anchors) && v.anchors[v.nextAnchor].Seq == seq; v.nextAnchor++ {
		a := &v.anchors[v.nextAnchor]
		if string(canon[typ.s:typ.e]) != `"`+TypeCheckpoint+`"` {
			return v.fail(ErrAnchorMismatch, "%s names a checkpoint at seq %d, but the log holds a %s record there: the log was rewritten at or before seq %d",
				a.name(), seq, canon[typ.s:typ.e], seq)
		}
		if a.Hash != string(v.hexsum[:]) {
			return v.fail(ErrAnchorMismatch, "this checkpoint (hash %s) is not the one %s names (hash %s): the log was rewritten at or before seq %d",
				v.hexsum[:], a.name(), a.Hash, seq)
		}
		v.sum.Anchors++
	}
	return nil
}

// Summary returns what has been verified so far.
func (v *Verifier) Summary() Summary {
	s := v.sum
	s.LastSeq = v.lastSeq
	if v.lastSeq > 0 {
		s.LastHash = string(v.lastHash[:])
	}
	return s
}

// Finish ends the log and returns its summary with the first problem found,
// if any. With a public key, a log without any checkpoint is an error
// (wrapping ErrNoCheckpoint): nothing in it could be checked against the key.
// A log that ends before an anchor's seq is an error (ErrTruncated), and so,
// with Strict, is a log with records after its last signed checkpoint
// (ErrUnsignedTail, naming the first of them).
func (v *Verifier) Finish() (Summary, error) {
	if v.err != nil {
		return v.Summary(), v.err
	}
	if v.opts.PublicKey != nil && v.sum.Checkpoints == 0 {
		return v.Summary(), &ChainError{
			Err: ErrNoCheckpoint,
			Reason: fmt.Sprintf("%v: a public key was given, but none of the %d records is a checkpoint, so the log's authenticity cannot be checked",
				ErrNoCheckpoint, v.sum.Records),
		}
	}
	if v.nextAnchor < len(v.anchors) {
		// Every anchor at or before the last seq was reached in Add.
		a := v.anchors[v.nextAnchor]
		v.err = &ChainError{
			Err:    ErrTruncated,
			Reason: fmt.Sprintf("the log ends at seq %d but an anchor names seq %d: the log was truncated (%s)", v.lastSeq, a.Seq, a.name()),
		}
		return v.Summary(), v.err
	}
	if v.opts.Strict {
		if v.opts.PublicKey == nil {
			v.err = &ChainError{
				Err:    ErrUnsignedTail,
				Reason: "strict verification needs the public key: without it no checkpoint signature is checked, so nothing in the log is vouched for",
			}
			return v.Summary(), v.err
		}
		if tail := v.lastSeq - v.sum.LastCheckpoint; tail > 0 {
			first := v.sum.LastCheckpoint + 1
			what, them := fmt.Sprintf("%d records (seq %d to %d) follow", tail, first, v.lastSeq), "them"
			if tail == 1 {
				what, them = fmt.Sprintf("1 record (seq %d) follows", first), "it"
			}
			v.err = &ChainError{
				Seq:    first,
				Line:   v.lastSignedLine + 1,
				Err:    ErrUnsignedTail,
				Reason: fmt.Sprintf("unsigned: %s the last signed checkpoint (seq %d), so no signature vouches for %s", what, v.sum.LastCheckpoint, them),
			}
			return v.Summary(), v.err
		}
	}
	return v.Summary(), nil
}

// VerifyJSONL verifies an exported JSON-lines audit log read from r (see
// Verifier), streaming it in constant memory. Lines may end in "\n" or
// "\r\n"; blank lines are allowed at the end only; a line may be at most
// MaxLineBytes long. A *ChainError reports a problem with the log; other
// errors are read errors.
func VerifyJSONL(r io.Reader, opts VerifyOptions) (Summary, error) {
	v := NewVerifier(opts)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	blank := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			blank++
			continue
		}
		if blank > 0 {
			v.line++ // the first blank line
			return v.Summary(), v.fail(nil, "blank line inside the log")
		}
		if err := v.Add(line); err != nil {
			return v.Summary(), err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			v.line += blank + 1
			return v.Summary(), v.fail(err, "line longer than %d bytes", MaxLineBytes)
		}
		return v.Summary(), fmt.Errorf("read audit log: %w", err)
	}
	return v.Finish()
}

// parseSeq parses a positive decimal integer without sign, fraction or
// exponent.
func parseSeq(line []byte, sp span) (uint64, bool) {
	if !sp.ok() || sp.e-sp.s > 19 || line[sp.s] == '0' {
		return 0, false
	}
	var n uint64
	for _, c := range line[sp.s:sp.e] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// isQuoted64 reports whether the value at sp starts with a quote and spans
// 66 bytes: a string with 64 bytes between its quotes (escapes as written),
// or, after scanQuick skipped it, what may be one.
func isQuoted64(line []byte, sp span) bool {
	return sp.ok() && sp.e-sp.s == 66 && line[sp.s] == '"'
}

// isHexString reports whether the value at sp is a string of 64 lower-case
// hex digits.
func isHexString(line []byte, sp span) bool {
	if !isQuoted64(line, sp) {
		return false
	}
	ok := true
	for _, c := range line[sp.s+1 : sp.e-1] {
		ok = ok && lowerHex[c]
	}
	return ok
}

// hexPairs holds each byte value in two lower-case hex digits.
var hexPairs = func() (t [256][2]byte) {
	const digits = "0123456789abcdef"
	for c := range t {
		t[c] = [2]byte{digits[c>>4], digits[c&15]}
	}
	return t
}()

// lowerHex marks the digits of lower-case hex.
var lowerHex = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}
