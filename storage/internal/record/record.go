// Package record holds what every storage backend does to a record before
// it stores it, and how backends name records in errors, so that bbolt and
// PostgreSQL keep and describe them identically.
package record

import (
	"fmt"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// Request returns r with every time in UTC. It copies the slices it changes
// so that the caller's request is left alone.
func Request(r storage.Request) storage.Request {
	utc(&r.CreatedAt, &r.ExpiresAt, &r.DecidedAt)
	if r.Votes != nil {
		votes := make([]storage.Vote, len(r.Votes))
		for i, v := range r.Votes {
			utc(&v.Time, &v.Approver.VerifiedAt)
			votes[i] = v
		}
		r.Votes = votes
	}
	if r.Execution != nil {
		ex := *r.Execution
		ex.UpdatedAt = ex.UpdatedAt.UTC()
		r.Execution = &ex
	}
	if r.BreakGlass != nil {
		bg := *r.BreakGlass
		utc(&bg.Due, &bg.Unreviewed, &bg.Lifted)
		r.BreakGlass = &bg
	}
	return r
}

// Outbox returns e with every time in UTC.
func Outbox(e storage.OutboxEntry) storage.OutboxEntry {
	utc(&e.NextAttempt, &e.LeaseUntil, &e.CreatedAt)
	return e
}

// Link returns l with every time in UTC.
func Link(l storage.IdentityLink) storage.IdentityLink {
	utc(&l.LinkedAt, &l.VerifiedAt, &l.AuthTime)
	return l
}

// Attempt returns a with every time in UTC.
func Attempt(a storage.LinkAttempt) storage.LinkAttempt {
	utc(&a.StartedAt, &a.CreatedAt, &a.ExpiresAt)
	return a
}

// utc sets each of ts to the same instant in UTC.
func utc(ts ...*time.Time) {
	for _, t := range ts {
		*t = t.UTC()
	}
}

// CheckNextAudit reads the chain's head in tx and refuses an audit record
// whose sequence number seq does not follow it (storage.ErrConflict), so
// that no backend can fork or skip a number.
func CheckNextAudit(tx storage.ReadTx, seq uint64) error {
	head, _, err := tx.AuditHead()
	if err != nil {
		return fmt.Errorf("append audit record %d: %w", seq, err)
	}
	if seq != head+1 {
		return fmt.Errorf("append audit record %d: the next sequence number is %d: %w", seq, head+1, storage.ErrConflict)
	}
	return nil
}

// Audit is one stored audit record as a backend reads it back.
type Audit struct {
	Seq  uint64
	Data []byte
}

// AuditChunk is how many audit records a backend reads at a time when it
// walks the chain.
const AuditChunk = 1000

// WalkAudit calls fn with every audit record whose sequence number is at
// least from, in order, reading AuditChunk records at a time with read (which
// returns up to that many, in order, starting at the given sequence number,
// and checks whether the walk may go on) and calling fn between reads, so
// that no read is held open while the caller works. A record read back as
// nil is handed on as empty.
func WalkAudit(from uint64, read func(from uint64) ([]Audit, error), fn func(seq uint64, data []byte) error) error {
	for {
		chunk, err := read(from)
		if err != nil {
			return err
		}
		for _, r := range chunk {
			if r.Data == nil {
				r.Data = []byte{}
			}
			if err := fn(r.Seq, r.Data); err != nil {
				return err
			}
		}
		if len(chunk) < AuditChunk {
			return nil
		}
		from = chunk[len(chunk)-1].Seq + 1
	}
}

// Account names a chat account in error messages.
func Account(platform, workspace, platformUser string) string {
	return fmt.Sprintf("%q user %q in workspace %q", platform, platformUser, workspace)
}
