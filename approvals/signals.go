package approvals

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// ErrReplayed means a signal whose id was already applied came again
// (StaleSignal.ID): nothing was changed.
var ErrReplayed = errors.New("signal already received")

// maxSignalSweep bounds how many expired signal ids one MarkIdentitiesStale
// transaction forgets; every signal sweeps, so the store holds about the
// ids of one remembering window.
const maxSignalSweep = 64

// IdentityMatch selects the links of one IdP identity: by issuer and
// subject when Subject is set, else by email.
type IdentityMatch struct {
	// Issuer and Subject match links whose Issuer and Subject equal them
	// exactly.
	Issuer  string
	Subject string
	// Email matches links whose Email equals it with ASCII letters folded
	// to lower case (only ASCII: Unicode case mapping would make different
	// addresses equal). Used when Subject is empty.
	Email string
}

// matches reports whether l belongs to the identity m selects. A match
// with neither a subject nor an email matches nothing.
func (m IdentityMatch) matches(l storage.IdentityLink) bool {
	if m.Subject != "" {
		return l.Issuer == m.Issuer && l.Subject == m.Subject
	}
	e := foldEmail(m.Email)
	return e != "" && foldEmail(l.Email) == e
}

// foldEmail trims an address and lower-cases its ASCII letters.
func foldEmail(e string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, strings.TrimSpace(e))
}

// StaleSignal is the identity provider saying that an identity's sign-ins
// no longer stand (sessions revoked, credentials changed, account disabled
// or deleted), as a verified Security Event Token tells it.
type StaleSignal struct {
	// Scope and ID identify the signal at its source (the transmitter, and
	// the SET's jti). The ID is recorded in the same transaction as the
	// change and remembered until RememberUntil: the same signal again is
	// refused with ErrReplayed, on every replica and after a restart.
	Scope         string
	ID            string
	RememberUntil time.Time
	// Subjects select the links to make stale; every link of every
	// platform and workspace that matches one of them. Empty: only the ID
	// is recorded (a signal that concerns no link).
	Subjects []IdentityMatch
	// SignedInBefore, when set, spares links whose last interactive
	// sign-in (AuthTime, else LinkedAt) is after it: the person signed in
	// again after the event, so the event does not concern that sign-in.
	SignedInBefore time.Time
	// Reason says why, for the person (it is shown when their next click
	// asks them to link again) and the audit log.
	Reason string
	// Data is added to each identity.stale record's data (the SET's jti
	// and event type, …): strings, booleans, integers and lists of them.
	Data map[string]any
}

// StaleResult is what MarkIdentitiesStale did.
type StaleResult struct {
	// Marked are the links made stale now.
	Marked []storage.IdentityLink
	// AlreadyStale counts matching links that were stale already.
	AlreadyStale int
	// SignedInAfter counts matching links spared because their identity
	// signed in after StaleSignal.SignedInBefore.
	SignedInAfter int
}

// MarkIdentitiesStale makes every link of the identities sig names stale
// at once, in one transaction with its identity.stale audit records and
// the record of sig.ID: votes through those links are refused and the
// person's next click asks them to link again. A signal whose ID was
// recorded before is refused with an error wrapping ErrReplayed, and
// changes nothing. No matching link is not an error.
func (s *Service) MarkIdentitiesStale(ctx context.Context, sig StaleSignal) (StaleResult, error) {
	if sig.Scope == "" || sig.ID == "" {
		return StaleResult{}, fmt.Errorf("mark identities stale: the signal has no scope or id: %w", ErrInvalid)
	}
	var res StaleResult
	err := s.update(ctx, func(tx storage.Tx) error {
		res = StaleResult{}
		now := s.clock.Now()
		fresh, err := tx.RecordNonce(storage.Nonce{Scope: sig.Scope, Value: sig.ID, ExpiresAt: sig.RememberUntil}, now)
		if err != nil {
			return fmt.Errorf("record signal id: %w", err)
		}
		if !fresh {
			return ErrReplayed
		}
		if _, err := tx.DeleteExpiredNonces(now, maxSignalSweep); err != nil {
			return fmt.Errorf("forget expired signal ids: %w", err)
		}
		if len(sig.Subjects) == 0 {
			return nil
		}
		links, err := matchingLinks(tx, sig.Subjects)
		if err != nil {
			return err
		}
		for _, l := range links {
			switch {
			case l.Stale:
				res.AlreadyStale++
				continue
			case !sig.SignedInBefore.IsZero() && lastSignIn(l).After(sig.SignedInBefore):
				res.SignedInAfter++
				continue
			}
			l.Stale, l.StaleReason, l.RefreshToken = true, sig.Reason, nil
			if err := tx.PutLink(l); err != nil {
				return fmt.Errorf("mark link of %s user %s stale: %w", l.Platform, l.PlatformUser, err)
			}
			rec := linkRecord(TypeIdentityStale, l, sig.Reason)
			maps.Copy(rec.Data, sig.Data)
			if err := s.appendAudit(tx, rec); err != nil {
				return err
			}
			res.Marked = append(res.Marked, l)
		}
		return nil
	})
	if errors.Is(err, ErrReplayed) {
		return StaleResult{}, fmt.Errorf("signal %q from %s: %w", sig.ID, sig.Scope, ErrReplayed)
	}
	if err != nil {
		return StaleResult{}, fmt.Errorf("mark identities stale: %w", err)
	}
	for _, l := range res.Marked {
		s.log.Info("identity link made stale by the identity provider", "platform", l.Platform, "workspace", l.Workspace,
			"platform_user", l.PlatformUser, "subject", l.Subject, "reason", sig.Reason, "signal", sig.ID)
	}
	return res, nil
}

// matchingLinks returns each link that one of ms selects, once, in the
// store's order.
func matchingLinks(tx storage.Tx, ms []IdentityMatch) ([]storage.IdentityLink, error) {
	// By subject the store narrows the walk; an email needs every link
	// (links are one per chat account that signed in; this runs once per
	// signal, not per click).
	bySubjectOnly := true
	for _, m := range ms {
		if m.Subject == "" {
			bySubjectOnly = false
		}
	}
	var candidates []storage.IdentityLink
	if bySubjectOnly {
		seen := map[string]bool{}
		for _, m := range ms {
			if seen[m.Subject] {
				continue
			}
			seen[m.Subject] = true
			ls, err := tx.Links(storage.LinkFilter{Subject: m.Subject})
			if err != nil {
				return nil, fmt.Errorf("find links of subject %q: %w", m.Subject, err)
			}
			candidates = append(candidates, ls...)
		}
	} else {
		ls, err := tx.Links(storage.LinkFilter{})
		if err != nil {
			return nil, fmt.Errorf("list links: %w", err)
		}
		candidates = ls
	}
	var out []storage.IdentityLink
	taken := map[[3]string]bool{}
	for _, l := range candidates {
		key := [3]string{l.Platform, l.Workspace, l.PlatformUser}
		if taken[key] {
			continue
		}
		for _, m := range ms {
			if m.matches(l) {
				taken[key] = true
				out = append(out, l)
				break
			}
		}
	}
	return out, nil
}

// lastSignIn is when the link's identity last signed in interactively:
// the IdP's auth_time when known, else when the link was made.
func lastSignIn(l storage.IdentityLink) time.Time {
	if !l.AuthTime.IsZero() {
		return l.AuthTime
	}
	return l.LinkedAt
}
