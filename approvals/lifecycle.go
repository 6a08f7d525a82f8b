package approvals

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

// expiryBatch is how many requests one expiry transaction handles.
const expiryBatch = 100

// maxExpirySleep bounds how long the expiry loop sleeps without looking at
// the store, so requests created by other replicas expire on time too.
const maxExpirySleep = time.Minute

// Canceller identifies who asks to cancel: the requester (same
// configured issuer and subject), or an admin.
type Canceller struct {
	Issuer  string
	Subject string
	// Admin, when set, cancels as an administrator (admins.groups): the
	// request need not be theirs, Reason is required, the
	// request.cancelled record names Admin.Actor as its actor, and the
	// review of Admin's own break-glass is refused (isReviewed). The
	// caller has checked that the token is an admin's.
	Admin *AdminPerson
	// Reason says why; required of an admin, written to the audit record.
	Reason string
}

// Cancel moves a pending request to cancelled on its requester's or an
// admin's word.
func (s *Service) Cancel(ctx context.Context, id string, by Canceller) (storage.Request, error) {
	if by.Admin != nil && strings.TrimSpace(by.Reason) == "" {
		return storage.Request{}, refusal(ErrInvalid, ReasonInvalid, "an admin's cancel of %s needs a reason, for the audit log", id)
	}
	if len(by.Reason) > MaxReasonBytes {
		return storage.Request{}, refusal(ErrInvalid, ReasonInvalid, "the reason is %d bytes; at most %d allowed", len(by.Reason), MaxReasonBytes)
	}
	var out storage.Request
	err := s.update(ctx, func(tx storage.Tx) error {
		out = storage.Request{}
		r, err := tx.Request(id)
		if errors.Is(err, storage.ErrNotFound) {
			return refusal(ErrUnknownRequest, ReasonUnknownRequest, "no request has id %q", id)
		}
		if err != nil {
			return err
		}
		if by.Admin == nil && (r.Requester.Issuer != by.Issuer || r.Requester.Subject != by.Subject) {
			return refusal(ErrForbidden, ReasonForbidden, "only the requester of %s may cancel it", id)
		}
		if r.State != storage.StatePending {
			return refusal(ErrNotPending, ReasonNotPending, "request %s is already %s and cannot be cancelled", id, r.State)
		}
		if by.Admin == nil && IsBreakGlassReview(r) {
			// Cancelling it would lift the block on the next
			// break-glass (breakglass.go).
			return refusal(ErrForbidden, ReasonForbidden,
				"request %s is the review of your break-glass request %s: only its reviewers end it (or an admin, with a reason)", id, r.BreakGlass.Reviews)
		}
		if by.Admin != nil && IsBreakGlassReview(r) && isReviewed(r, *by.Admin) {
			return refusal(ErrForbidden, ReasonForbidden,
				"request %s reviews your own break-glass request %s: its reviewers end it, or another admin", id, r.BreakGlass.Reviews)
		}
		d := decision{
			state:  storage.StateCancelled,
			by:     "requester",
			record: audit.Record{Type: audit.TypeRequestCancelled, Actor: requesterActor(r.Requester)},
		}
		if by.Admin != nil {
			d.by = "admin"
			actor := by.Admin.Actor
			d.record.Actor = &actor
			d.record.Data = map[string]any{"by": "admin"}
		}
		if by.Reason != "" {
			if d.record.Data == nil {
				d.record.Data = map[string]any{}
			}
			d.record.Data["reason"] = by.Reason
		}
		out, err = s.decide(tx, r, d, s.clock.Now().UTC())
		return err
	})
	if err != nil {
		return storage.Request{}, refusedOr(err, "cancel %s", id)
	}
	s.metrics.decided(storage.StateCancelled, 1)
	s.watchers.notify(id)
	if by.Admin != nil {
		s.log.Info("request cancelled by an admin", "request", id, "admin", by.Admin.Actor.Subject)
	} else {
		s.log.Info("request cancelled", "request", id)
	}
	return out, nil
}

// decision is how a pending request ends.
type decision struct {
	// state is the final state it reaches.
	state storage.State
	// by says who or what decided (storage.Request.DecidedBy).
	by string
	// record announces the decision in the audit log: its type, actor
	// and data. decide fills in the time, the request and the action.
	record audit.Record
}

// decide ends pending request r with d at now, inside tx: it stores r in
// its final state, appends d's record and queues the card updates
// (EventDecided). It returns r as stored. A cancel, an expiry and a vote
// that reaches quorum or denies all end a request here, so every
// decision is stored, audited and announced alike; what a vote adds (its
// own record, the execution to queue) the caller does first. An approval
// is also signed here, once, when the service has an Attester: the token
// is stored on r and its record names it (attestation.go).
func (s *Service) decide(tx storage.Tx, r storage.Request, d decision, now time.Time) (storage.Request, error) {
	r.State, r.DecidedAt, r.DecidedBy = d.state, now, d.by
	if d.state == storage.StateApproved && s.opts.Attester != nil {
		token, noted, err := s.attest(r, now)
		if err != nil {
			return r, err
		}
		r.Attestation = token
		data := maps.Clone(d.record.Data)
		if data == nil {
			data = map[string]any{}
		}
		data["attestation"] = noted
		d.record.Data = data
	}
	if err := tx.UpdateRequest(r); err != nil {
		return r, fmt.Errorf("store %s %s: %w", r.ID, d.state, err)
	}
	r.Version++
	rec := d.record
	rec.Time, rec.RequestID, rec.Action = audit.FormatTime(now), r.ID, r.Action
	if err := s.appendAudit(tx, rec); err != nil {
		return r, err
	}
	if err := s.queueRequesterNotice(tx, r); err != nil {
		return r, err
	}
	return r, s.notifyAction(tx, r, EventDecided)
}

// notifyAction queues card updates for r under its action, if the action is
// still declared.
func (s *Service) notifyAction(tx storage.Tx, r storage.Request, event string) error {
	action, err := s.policy.Action(r.Action)
	if err != nil {
		return nil // nothing to announce where no policy says where
	}
	return s.queueNotify(tx, action, r, event)
}

// expireInTx moves a pending request to expired inside tx.
func (s *Service) expireInTx(tx storage.Tx, r storage.Request, now time.Time) (storage.Request, error) {
	return s.decide(tx, r, decision{
		state: storage.StateExpired,
		by:    "expiry",
		record: audit.Record{
			Type: audit.TypeRequestExpired,
			Data: map[string]any{"expires_at": audit.FormatTime(r.ExpiresAt)},
		},
	}, now)
}

// ExpireDue expires every pending request whose deadline has passed and
// returns how many it expired.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	total := 0
	for {
		var ids, flagged []string
		err := s.update(ctx, func(tx storage.Tx) error {
			ids, flagged = ids[:0], flagged[:0]
			now := s.clock.Now().UTC()
			due, err := tx.PendingExpiring(now, expiryBatch)
			if err != nil {
				return err
			}
			for _, r := range due {
				if IsBreakGlassReview(r) {
					// Reviews never expire; due, they are flagged
					// (breakglass.go).
					if err := s.markUnreviewed(tx, r, now); err != nil {
						return err
					}
					flagged = append(flagged, r.ID)
					continue
				}
				if _, err := s.expireInTx(tx, r, now); err != nil {
					return err
				}
				ids = append(ids, r.ID)
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("expire due requests: %w", err)
		}
		total += len(ids)
		s.metrics.decided(storage.StateExpired, len(ids))
		s.watchers.notify(ids...)
		for _, id := range ids {
			s.log.Info("request expired", "request", id)
		}
		s.watchers.notify(flagged...)
		for _, id := range flagged {
			s.log.Warn("break-glass review overdue: flagged unreviewed", "review", id)
		}
		if len(ids)+len(flagged) < expiryBatch {
			return total, nil
		}
	}
}

// nextExpiry returns when the soonest pending request expires, or false.
func (s *Service) nextExpiry(ctx context.Context) (time.Time, bool, error) {
	next, err := viewValue(ctx, s.store, func(tx storage.ReadTx) ([]storage.Request, error) {
		return tx.PendingExpiring(time.Unix(1<<40, 0), 1)
	})
	if err != nil || len(next) == 0 {
		return time.Time{}, false, err
	}
	return next[0].ExpiresAt, true, nil
}

func (s *Service) wakeExpiry() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunExpiry expires requests at their deadline until ctx ends: it sleeps on
// the service's clock until the soonest pending deadline (or until a new
// request may have an earlier one), so a request expires at created + ttl,
// also when that moment passed while signoff was down. Store errors are
// logged and retried.
func (s *Service) RunExpiry(ctx context.Context) error {
	for {
		sleep := maxExpirySleep
		if _, err := s.ExpireDue(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Error("expiry pass failed; retrying", "err", err)
			sleep = time.Second
		} else if at, ok, err := s.nextExpiry(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Error("read next expiry failed; retrying", "err", err)
			sleep = time.Second
		} else if ok {
			sleep = min(sleep, max(at.Sub(s.clock.Now()), 0))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.wake:
		case <-s.clock.After(sleep):
		}
	}
}
