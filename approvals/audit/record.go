// Package audit defines signoff's audit record, the hash chain that links
// the records, and the tools auditors use on it: export to JSON lines or CSV
// and an offline verifier.
//
// A record's hash is the hex SHA-256 of the record without its "hash" member,
// serialized as RFC 8785 (JSON Canonicalization Scheme). Its "prev" is the
// previous record's hash, or 64 zeros for seq 1. Records hold no
// floating-point numbers, so any RFC 8785 implementation reproduces the hash.
//
// Seal makes the next record and its export line; NewCheckpoint makes a
// signed checkpoint record (checkpoint.go describes its data). A Verifier
// (or VerifyJSONL for an export file) checks a log offline; ExportJSONL,
// CSVWriter and Filter produce exports.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gowebpki/jcs"
)

// GenesisPrev is the prev of the first record.
var GenesisPrev = strings.Repeat("0", 64)

// Record types signoff writes.
const (
	TypeRequestCreated     = "request.created"
	TypeVoteApprove        = "vote.approve"
	TypeVoteDeny           = "vote.deny"
	TypeVoteRejected       = "vote.rejected"
	TypeRequestApproved    = "request.approved"
	TypeRequestDenied      = "request.denied"
	TypeRequestExpired     = "request.expired"
	TypeRequestCancelled   = "request.cancelled"
	TypeExecutionAttempt   = "execution.attempt"
	TypeExecutionSucceeded = "execution.succeeded"
	TypeExecutionFailed    = "execution.failed"
	TypeIdentityLinked     = "identity.linked"
	TypeIdentityUnlinked   = "identity.unlinked"
	// TypeIdentityLinkRefused records a sign-in that would have linked a
	// chat account to an identity that is not its owner's: both sides are
	// named (the chat account in the actor's platform fields, the identity
	// that signed in in its issuer and subject).
	TypeIdentityLinkRefused = "identity.link_refused"
	TypeCallbackRejected    = "callback.rejected"
	TypeCheckpoint          = "checkpoint"
)

// TypeExecutionDeferred records an approved action held back because its
// windows are closed or a freeze is in force, with the reason and when it
// will run.
const TypeExecutionDeferred = "execution.deferred"

// Actor is who caused a record: a requester, an approver (with the chat
// platform they acted from) or signoff itself (empty). Its fields, like
// Record's, are declared in the order RFC 8785 sorts their JSON names (see
// canonical).
type Actor struct {
	Email        string `json:"email,omitempty"`
	Issuer       string `json:"issuer,omitempty"`
	Name         string `json:"name,omitempty"`
	Platform     string `json:"platform,omitempty"`
	PlatformUser string `json:"platform_user,omitempty"`
	Subject      string `json:"subject,omitempty"`
	Workspace    string `json:"workspace,omitempty"`
}

// Record is one audit log entry. Data holds only strings, booleans,
// integers, nulls, and arrays or objects of them: never floats, never
// secrets or tokens. The fields are declared in the order RFC 8785 sorts
// their JSON names, so that encoding/json writes most records in
// canonical form at once (see canonical); reorder them and
// TestCanonicalTakesTheQuickPath fails.
type Record struct {
	Action    string         `json:"action,omitempty"`
	Actor     *Actor         `json:"actor,omitempty"`
	Data      map[string]any `json:"data,omitempty"`
	Hash      string         `json:"hash,omitempty"`
	Prev      string         `json:"prev"`
	RequestID string         `json:"request_id,omitempty"`
	Seq       uint64         `json:"seq"`
	Source    string         `json:"source,omitempty"`
	Time      string         `json:"time"`
	Type      string         `json:"type"`
}

// FormatTime renders t as the record's time: RFC 3339 in UTC with the
// fractional seconds Go keeps (RFC3339Nano).
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Canonical returns the RFC 8785 serialization of r as it stands (with its
// Hash member if set).
func Canonical(r Record) ([]byte, error) {
	var f topFields
	return canonical(r, &f)
}

// canonical is Canonical. When it takes the quick path it also leaves the
// top level of the result scanned into f (f.canonical set); otherwise
// f.canonical is false and f holds nothing of use.
//
// RFC 8785 is encoding/json's output parsed and written again with members
// sorted, numbers and strings in one form. For most records that second
// pass changes nothing: Record and Actor declare their fields in sorted
// order, encoding/json sorts map keys, and records hold plain strings and
// small integers. So when the quick scanner (which answers only "certainly
// canonical" or "not sure") finds encoding/json's output canonical, that
// output is the answer; anything else (a non-ASCII member name, an escape
// RFC 8785 writes differently, a long number, a struct in Data) takes
// jcs.Transform as before. The bytes are the same either way
// (TestCanonicalMatchesJCS, FuzzCanonical).
func canonical(r Record, f *topFields) ([]byte, error) {
	raw, err := marshalNoEscape(r)
	if err != nil {
		return nil, fmt.Errorf("encode audit record %d: %w", r.Seq, err)
	}
	if scanCanonical(raw, f) {
		return raw, nil
	}
	out, err := jcs.Transform(raw)
	if err != nil {
		return nil, fmt.Errorf("canonicalize audit record %d: %w", r.Seq, err)
	}
	return out, nil
}

// ComputeHash returns the hex SHA-256 of r's canonical form without Hash.
func ComputeHash(r Record) (string, error) {
	r.Hash = ""
	c, err := Canonical(r)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// Seal makes r the record after (prevSeq, prevHash): it sets Seq and Prev,
// computes Hash, and returns the sealed record with its canonical bytes (one
// export line, without the newline).
func Seal(r Record, prevSeq uint64, prevHash string) (Record, []byte, error) {
	if err := checkSeq(prevSeq); err != nil {
		return Record{}, nil, err
	}
	if prevSeq == 0 {
		prevHash = GenesisPrev
	}
	r.Seq = prevSeq + 1
	r.Prev = prevHash
	r.Hash = ""
	c, err := Canonical(r)
	if err != nil {
		return Record{}, nil, err
	}
	sum := sha256.Sum256(c)
	r.Hash = hex.EncodeToString(sum[:])
	// The line is the canonical form with the hash member added. Rather
	// than canonicalize the record a second time, insert the member where
	// RFC 8785's ordering puts it; the bytes are the same (tests compare).
	line, ok := insertHash(c, r.Hash)
	if !ok {
		if line, err = Canonical(r); err != nil {
			return Record{}, nil, err
		}
		// Never write a line the verifier would refuse (one nested
		// deeper than maxNesting, say): the chain would end there.
		var f topFields
		if err := scanTop(line, &f); err != nil {
			return Record{}, nil, fmt.Errorf("seal audit record %s: its canonical form is not a record the verifier reads: %w", r.Type, err)
		}
	}
	return r, line, nil
}

// MaxSeq is the largest seq a record may have: the largest integer RFC
// 8785 writes exactly (it writes numbers as IEEE 754 doubles do), so that
// every implementation hashes a record's seq alike.
const MaxSeq = 1<<53 - 1

// checkSeq refuses to seal after prevSeq when the next seq would pass
// MaxSeq.
func checkSeq(prevSeq uint64) error {
	if prevSeq >= MaxSeq {
		return fmt.Errorf("seal audit record: the log holds %d records, the most a seq can count exactly (RFC 8785 numbers)", prevSeq)
	}
	return nil
}

// insertHash returns canon, the canonical form of a record without hash,
// with the member "hash":h inserted in its sorted place. ok is false when
// canon does not look like a record (the caller then canonicalizes anew).
func insertHash(canon []byte, h string) ([]byte, bool) {
	var f topFields
	if err := scanTop(canon, &f); err != nil || f.unknown.len() > 0 || f.val[fHash].ok() {
		return nil, false
	}
	at := -1 // the first member sorting after "hash"
	for k := range numFields {
		if f.val[k].ok() && fieldNames[k] > "hash" && (at < 0 || f.key[k] < at) {
			at = f.key[k]
		}
	}
	member := `"hash":"` + h + `"`
	out := make([]byte, 0, len(canon)+len(member)+1)
	if at < 0 { // last member: before the closing brace
		out = append(out, canon[:len(canon)-1]...)
		if len(canon) > 2 {
			out = append(out, ',')
		}
		out = append(out, member...)
		return append(out, '}'), true
	}
	out = append(out, canon[:at]...)
	out = append(out, member...)
	out = append(out, ',')
	return append(out, canon[at:]...), true
}

// ParseRecord decodes one export line into a Record. Numbers in Data come
// back as json.Number (integers stay integers); members the Record type
// does not know are ignored. A line that repeats a member is refused. It
// does not check the hash: use a Verifier for that.
func ParseRecord(line []byte) (Record, error) {
	var f topFields
	src, err := canonicalLine(line, &f)
	if err != nil {
		return Record{}, fmt.Errorf("parse audit record: %w", err)
	}
	if err := checkExactNames(src); err != nil {
		return Record{}, fmt.Errorf("parse audit record: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return Record{}, fmt.Errorf("parse audit record: %w", err)
	}
	return r, nil
}

// recordNames and actorNames are the member names of Record and Actor.
var recordNames, actorNames = jsonNames(reflect.TypeFor[Record]()), jsonNames(reflect.TypeFor[Actor]())

// checkExactNames refuses a record with a member whose name is not one of
// Record's (or, inside actor, Actor's) but equals one under Unicode case
// folding, such as "ſeq" or "SEQ". encoding/json would read such a member
// into the field it folds to, and a later one wins: the verifier, which
// reads the exact names, would have checked seq 5 while ParseRecord
// returned the forged "ſeq" 999. Members with other names are kept as
// unknown, as before.
func checkExactNames(src []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(src, &top); err != nil {
		return err
	}
	if err := exactNames(top, recordNames, ""); err != nil {
		return err
	}
	if raw, ok := top["actor"]; ok && len(raw) > 0 && raw[0] == '{' {
		var actor map[string]json.RawMessage
		if err := json.Unmarshal(raw, &actor); err != nil {
			return err
		}
		return exactNames(actor, actorNames, "actor.")
	}
	return nil
}

func exactNames(obj map[string]json.RawMessage, names []string, where string) error {
	for k := range obj {
		if slices.Contains(names, k) {
			continue
		}
		for _, n := range names {
			if strings.EqualFold(k, n) {
				return fmt.Errorf("member %s%q is not %s%q: an audit record names its members exactly (the record was forged or damaged)", where, k, where, n)
			}
		}
	}
	return nil
}

// jsonNames lists the JSON member names of struct type t.
func jsonNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// canonicalLine scans the top level of line into f and returns the line in
// canonical form: line itself when it is, else its canonicalization
// (which refuses repeated members at any depth), scanned into f in turn.
func canonicalLine(line []byte, f *topFields) ([]byte, error) {
	if err := scanTop(line, f); err != nil {
		return nil, err
	}
	if f.canonical {
		return line, nil
	}
	c, err := jcs.Transform(line)
	if err != nil {
		return nil, err
	}
	if err := scanTop(c, f); err != nil {
		return nil, err
	}
	return c, nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
