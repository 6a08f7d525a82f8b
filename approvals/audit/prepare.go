package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Prepared is a record canonicalized ahead of time, waiting only for its
// place in the chain. Canonicalizing (RFC 8785) is the expensive part of
// sealing; the chain position (seq, prev) is known only inside the
// transaction that appends the record, where the store is serialized.
// Preparing outside that transaction keeps the serialized part short.
type Prepared struct {
	rec   Record
	canon []byte // canonical form with "prev":"" and "seq":0
	prev  span   // value span of the top-level prev member in canon
	seq   span   // value span of the top-level seq member in canon
}

// Prepare canonicalizes r (its Seq, Prev and Hash are ignored) for a later
// SealPrepared.
func Prepare(r Record) (*Prepared, error) {
	r.Seq, r.Prev, r.Hash = 0, "", ""
	var f topFields
	c, err := canonical(r, &f)
	if err != nil {
		return nil, err
	}
	var scanErr error
	if !f.canonical {
		scanErr = scanTop(c, &f)
	}
	if scanErr != nil || !f.val[fPrev].ok() || !f.val[fSeq].ok() || f.val[fHash].ok() {
		return nil, fmt.Errorf("prepare audit record %s: canonical form has no top-level prev and seq", r.Type)
	}
	return &Prepared{rec: r, canon: c, prev: f.val[fPrev], seq: f.val[fSeq]}, nil
}

// SealPrepared is Seal for a prepared record: the same record and the same
// bytes, without canonicalizing again.
func SealPrepared(p *Prepared, prevSeq uint64, prevHash string) (Record, []byte, error) {
	if err := checkSeq(prevSeq); err != nil {
		return Record{}, nil, err
	}
	if prevSeq == 0 {
		prevHash = GenesisPrev
	}
	if !isHexHash(prevHash) {
		return Seal(p.rec, prevSeq, prevHash)
	}
	r := p.rec
	r.Seq, r.Prev = prevSeq+1, prevHash
	seq := strconv.FormatUint(r.Seq, 10)
	// prev sorts before seq, so splice left to right.
	c := make([]byte, 0, len(p.canon)+len(prevHash)+len(seq))
	c = append(c, p.canon[:p.prev.s]...)
	c = strconv.AppendQuote(c, prevHash)
	c = append(c, p.canon[p.prev.e:p.seq.s]...)
	c = append(c, seq...)
	c = append(c, p.canon[p.seq.e:]...)
	sum := sha256.Sum256(c)
	r.Hash = hex.EncodeToString(sum[:])
	line, ok := insertHash(c, r.Hash)
	if !ok {
		return Seal(r, prevSeq, prevHash)
	}
	return r, line, nil
}

// isHexHash reports whether h is 64 lower-case hex digits, which quote the
// same way in Go and in RFC 8785.
func isHexHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
