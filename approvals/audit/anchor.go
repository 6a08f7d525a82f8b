package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
)

// An Anchor is a checkpoint record known from outside the log: published
// (to a chat channel, an object store, a witness) when it was made, so that
// whoever holds the database cannot change it. A log verified against its
// anchors (VerifyOptions.Anchors) must hold each of them unchanged, which
// makes a log cut right after an earlier checkpoint, or rewritten from one,
// fail although its own chain and signatures are intact.
type Anchor struct {
	// Seq and Hash are the checkpoint record's own seq and hash.
	Seq  uint64
	Hash string
	// Line is the anchor's 1-based line in the file it was read from, or 0.
	Line int

	data checkpointData
}

// name names a for messages.
func (a *Anchor) name() string {
	if a.Line == 0 {
		return fmt.Sprintf("the anchor at seq %d", a.Seq)
	}
	return fmt.Sprintf("the anchor on line %d", a.Line)
}

// ParseAnchor reads one checkpoint record, as exported (one JSON-lines line,
// canonical or not), and checks it on its own: its hash matches its content,
// it is a checkpoint, and its data is well formed and covers the record just
// before it (data.seq is its seq - 1 and data.hash its prev). It does not
// check the signature; see CheckSignature.
func ParseAnchor(line []byte) (Anchor, error) {
	var f topFields
	canon, err := canonicalLine(line, &f)
	if err != nil {
		return Anchor{}, fmt.Errorf("not an audit record: %w", err)
	}
	if !isHexString(canon, f.val[fHash]) {
		return Anchor{}, errors.New("hash is missing or not 64 lower-case hex digits")
	}
	var v Verifier // for its hashing only
	if !v.hashMatches(canon, &f) {
		return Anchor{}, errors.New("its hash does not match its content: the anchor was altered after it was exported")
	}
	seq, ok := parseSeq(canon, f.val[fSeq])
	if !ok {
		return Anchor{}, errors.New("seq is missing or not a positive integer")
	}
	typ, ok := stringValue(canon, f.val[fType])
	if !ok {
		return Anchor{}, errors.New("type is missing or not a string")
	}
	if typ != TypeCheckpoint {
		return Anchor{}, fmt.Errorf("record seq %d is a %q record; an anchor must be a %q record", seq, typ, TypeCheckpoint)
	}
	prev := f.val[fPrev]
	if !isHexString(canon, prev) {
		return Anchor{}, errors.New("prev is missing or not 64 lower-case hex digits")
	}
	d, err := readCheckpointData(canon, f.val[fData])
	if err != nil {
		return Anchor{}, fmt.Errorf("malformed checkpoint: %w", err)
	}
	if seq == 1 || d.seq != seq-1 || d.hash != string(canon[prev.s+1:prev.e-1]) {
		return Anchor{}, fmt.Errorf("checkpoint seq %d does not cover the record just before it (data.seq must be %d and data.hash its prev)", seq, seq-1)
	}
	if _, err := d.signature(); err != nil {
		return Anchor{}, fmt.Errorf("malformed checkpoint: data.signature is not a base64 Ed25519 signature: %w", err)
	}
	return Anchor{Seq: seq, Hash: string(v.hexsum[:]), data: d}, nil
}

// CheckSignature checks a's checkpoint signature with pub.
func (a *Anchor) CheckSignature(pub ed25519.PublicKey) error {
	sig, err := a.data.signature()
	if err != nil {
		return fmt.Errorf("malformed checkpoint: data.signature is not a base64 Ed25519 signature: %w", err)
	}
	return a.data.checkSignature(pub, KeyID(pub), sig)
}

// AnchorError is a problem with an anchor file, at a line.
type AnchorError struct {
	// Line is the 1-based line, or 0 for a problem with the file as a whole.
	Line int
	Err  error
}

func (e *AnchorError) Error() string {
	if e.Line == 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

func (e *AnchorError) Unwrap() error { return e.Err }

// ReadAnchors reads an anchor file: checkpoint records as exported, one a
// line (blank lines are skipped), each checked by ParseAnchor and, with pub,
// by CheckSignature. Two anchors at the same seq must be the same record. A
// file without any anchor is an error. Problems are *AnchorError values
// naming the line; read errors are returned as they are.
func ReadAnchors(r io.Reader, pub ed25519.PublicKey) ([]Anchor, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4<<10), MaxLineBytes)
	var (
		out  []Anchor
		line int
		seen = map[uint64]int{} // seq → index in out
	)
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		a, err := ParseAnchor(b)
		if err != nil {
			return nil, &AnchorError{Line: line, Err: err}
		}
		a.Line = line
		if pub != nil {
			if err := a.CheckSignature(pub); err != nil {
				return nil, &AnchorError{Line: line, Err: err}
			}
		}
		if i, dup := seen[a.Seq]; dup {
			if out[i].Hash != a.Hash {
				return nil, &AnchorError{Line: line, Err: fmt.Errorf("names seq %d like line %d, but with another hash: the anchors contradict each other", a.Seq, out[i].Line)}
			}
			continue
		}
		seen[a.Seq] = len(out)
		out = append(out, a)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &AnchorError{Line: line + 1, Err: fmt.Errorf("line longer than %d bytes", MaxLineBytes)}
		}
		return nil, fmt.Errorf("read anchors: %w", err)
	}
	if len(out) == 0 {
		return nil, &AnchorError{Err: errors.New("no anchors: the file holds no checkpoint record (one exported checkpoint record a line is expected)")}
	}
	return out, nil
}
