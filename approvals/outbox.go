package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Outbox entry kinds the service queues.
const (
	// KindExecute runs an approved request's on_approve action.
	KindExecute = "execute"
	// KindNotifyPrefix + platform ("notify.slack") posts or updates a card.
	KindNotifyPrefix = "notify."
	// KindNoticePrefix + platform ("notice.slack") sends a private message
	// to one chat account (AccountNotice).
	KindNoticePrefix = "notice."
)

// AccountNotice is the payload of a "notice.<platform>" outbox entry: a
// message to one chat account about its link (made, refused, replaced),
// so that the owner of the account learns what was done in its name.
type AccountNotice struct {
	Workspace string `json:"workspace"`
	User      string `json:"user"`
	// Conversation is where the account last clicked (Teams needs a
	// conversation to write to); may be empty.
	Conversation string `json:"conversation,omitempty"`
	// Text is plain text; the adapter escapes it for its markup.
	Text string `json:"text"`
	// Public is the same news without names or emails, for a
	// conversation other people read (a Teams channel, where a bot
	// cannot write to one person privately).
	Public string `json:"public,omitempty"`
}

// queueNotice queues a message to one chat account, when its platform's
// adapter is running (Options.Platforms); otherwise nobody could deliver
// it and it is skipped.
func (s *Service) queueNotice(tx storage.Tx, platform string, n AccountNotice) error {
	if !slices.Contains(s.opts.Platforms, platform) || n.User == "" {
		return nil
	}
	payload, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notice: %w", err)
	}
	now := s.clock.Now().UTC()
	if _, err := tx.Enqueue(storage.OutboxEntry{
		Kind: KindNoticePrefix + platform, Payload: payload, NextAttempt: now, CreatedAt: now,
	}); err != nil {
		return fmt.Errorf("queue %s notice for %s: %w", platform, n.User, err)
	}
	return nil
}

// Events a notification entry announces.
const (
	EventCreated  = "created"
	EventVoted    = "voted"
	EventDecided  = "decided"
	EventExecuted = "executed"
)

// Notification is the payload of a "notify.<platform>" outbox entry: which
// conversation to post to or update, and why. The adapter renders the
// request as it stands when it delivers.
type Notification struct {
	Event  string `json:"event"`
	Target string `json:"target"`
}

// queueNotify queues one entry per conversation, on every running platform
// the action announces on, and on the conversations the request was
// escalated to by now (remind.go).
func (s *Service) queueNotify(tx storage.Tx, a *policy.Action, r storage.Request, event string) error {
	now := s.clock.Now().UTC()
	for _, p := range s.opts.Platforms {
		targets := a.Notify.Targets(p)
		if event != EventCreated {
			for _, t := range a.Escalated(p, r.CreatedAt, now) {
				if !slices.Contains(targets, t) {
					targets = append(slices.Clip(targets), t)
				}
			}
		}
		for _, t := range targets {
			if err := queueNotification(tx, p, r.ID, Notification{Event: event, Target: t}, now, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// queueNotification queues n for request id on platform p, due at due.
func queueNotification(tx storage.Tx, p, id string, n Notification, due, now time.Time) error {
	payload, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode %s notification: %w", n.Event, err)
	}
	if _, err := tx.Enqueue(storage.OutboxEntry{
		RequestID:   id,
		Kind:        KindNotifyPrefix + p,
		Payload:     payload,
		NextAttempt: due,
		CreatedAt:   now,
	}); err != nil {
		return fmt.Errorf("queue %s %s notification for %s: %w", p, n.Event, id, err)
	}
	return nil
}

func (s *Service) queueExecution(tx storage.Tx, r storage.Request) error {
	now := s.clock.Now().UTC()
	if _, err := tx.Enqueue(storage.OutboxEntry{
		RequestID:   r.ID,
		Kind:        KindExecute,
		Payload:     []byte("{}"),
		NextAttempt: now,
		CreatedAt:   now,
	}); err != nil {
		return fmt.Errorf("queue execution for %s: %w", r.ID, err)
	}
	return nil
}

// LockCard holds off every other replica sharing the store from delivering
// to one card (a request's card in one conversation of one platform) until
// unlock is called. A card is rendered from the request as it stands when
// delivered, so deliveries that take turns land in the order they read it,
// and the card never ends up showing an older state than the last one
// delivered. Within one process the caller serializes its own deliveries;
// on a store that is not a storage.Locker (bbolt: one process) this holds
// nothing.
func (s *Service) LockCard(ctx context.Context, platform, requestID, target string) (unlock func(), err error) {
	locker, ok := s.store.(storage.Locker)
	if !ok {
		return func() {}, nil
	}
	unlock, err = locker.Lock(ctx, "card\x00"+platform+"\x00"+requestID+"\x00"+target)
	if err != nil {
		return nil, fmt.Errorf("lock the %s card of %s in %s: %w", platform, requestID, target, err)
	}
	return unlock, nil
}

// Claim leases up to limit due outbox entries whose kind starts with
// kindPrefix, for lease: until then no other worker (in this process or
// another replica) claims them. Each claim counts as an attempt.
func (s *Service) Claim(ctx context.Context, kindPrefix string, limit int, lease time.Duration) ([]storage.OutboxEntry, error) {
	return s.claimDue(ctx, kindPrefix, limit, func(tx storage.Tx, now time.Time, due []storage.OutboxEntry) ([]storage.OutboxEntry, error) {
		var claimed []storage.OutboxEntry
		for _, e := range due {
			if len(claimed) == limit {
				break
			}
			leased, err := leaseEntry(tx, e, now, lease)
			if err != nil {
				return nil, err
			}
			claimed = append(claimed, leased)
		}
		return claimed, nil
	})
}

// claimDue is the frame of a claim of kindPrefix's due entries: unless a
// read transaction finds none due (see anyDue), it lists up to scan of
// them in a write transaction and lets claim lease those it takes (see
// leaseEntry), returning them.
func (s *Service) claimDue(ctx context.Context, kindPrefix string, scan int, claim func(tx storage.Tx, now time.Time, due []storage.OutboxEntry) ([]storage.OutboxEntry, error)) ([]storage.OutboxEntry, error) {
	if due, err := s.anyDue(ctx, kindPrefix); err != nil || !due {
		return nil, err
	}
	var claimed []storage.OutboxEntry
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		now := s.clock.Now().UTC()
		due, err := tx.DueOutbox(now, kindPrefix, scan)
		if err != nil {
			return err
		}
		claimed, err = claim(tx, now, due)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim %s outbox entries: %w", kindPrefix, err)
	}
	return claimed, nil
}

// leaseEntry leases e until now+lease, counts the claim as an attempt and
// stores it, returning it as stored.
func leaseEntry(tx storage.Tx, e storage.OutboxEntry, now time.Time, lease time.Duration) (storage.OutboxEntry, error) {
	e.LeaseUntil = now.Add(lease)
	e.Attempts++
	return e, tx.PutOutbox(e)
}

// anyDue reports whether an outbox entry of kindPrefix is due now, from a
// read transaction. Workers poll for each kind several times a second, and
// most polls find nothing: answering those without a write transaction
// keeps the single writer (and its fsyncs) for work that changes something,
// such as the votes people wait on (docs/performance.md). The claim itself
// looks again in its write transaction; an entry that falls due in between
// is claimed at the next poll.
func (s *Service) anyDue(ctx context.Context, kindPrefix string) (bool, error) {
	now := s.clock.Now().UTC()
	due, err := viewValue(ctx, s.store, func(tx storage.ReadTx) ([]storage.OutboxEntry, error) {
		return tx.DueOutbox(now, kindPrefix, 1)
	})
	if err != nil {
		return false, fmt.Errorf("look for due %s outbox entries: %w", kindPrefix, err)
	}
	return len(due) > 0, nil
}

// Retry releases a claimed entry for another attempt at next, recording why
// this one failed.
func (s *Service) Retry(ctx context.Context, id uint64, next time.Time, cause error) error {
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		e, err := tx.Outbox(id)
		if err != nil {
			return err
		}
		e.NextAttempt = next.UTC()
		e.LeaseUntil = time.Time{}
		if cause != nil {
			e.LastError = cause.Error()
		}
		return tx.PutOutbox(e)
	})
	if err != nil {
		return fmt.Errorf("reschedule outbox entry %d: %w", id, err)
	}
	return nil
}

// Complete removes a delivered entry: a card update, a notice, or an entry
// nothing can deliver. A card post is completed with RecordCardPosted.
func (s *Service) Complete(ctx context.Context, id uint64) error {
	if err := s.update(ctx, func(tx storage.Tx) error { return tx.DeleteOutbox(id) }); err != nil {
		return fmt.Errorf("complete outbox entry %d: %w", id, err)
	}
	return nil
}

// CompleteAll removes delivered entries in one transaction, so that a
// worker that delivered a batch spends one commit on it instead of one per
// entry (docs/performance.md). The result holds, in the order of ids, nil
// for each entry removed and an error wrapping storage.ErrNotFound for
// each entry already gone (another worker completed it after this one's
// lease ran out). Any other failure removes none and is returned as err.
func (s *Service) CompleteAll(ctx context.Context, ids []uint64) ([]error, error) {
	results := make([]error, len(ids))
	err := s.update(ctx, func(tx storage.Tx) error {
		for i, id := range ids {
			results[i] = nil
			err := tx.DeleteOutbox(id)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				results[i] = fmt.Errorf("complete outbox entry %d: %w", id, err)
			case err != nil:
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("complete %d outbox entries: %w", len(ids), err)
	}
	return results, nil
}

// RecordCardPosted completes outbox entry id, the post of a request's card
// to conversation target, and stores where the card landed (card, with
// its Platform set) on the request, in one transaction. When the request
// already has a card of that platform in target or in card.Conversation
// (another replica posted it first), the request is left as it is and
// duplicate is true: the caller takes its own message back.
//
// An error wraps storage.ErrNotFound when the entry is gone (another
// worker completed it) or the request is.
func (s *Service) RecordCardPosted(ctx context.Context, id uint64, requestID, target string, card storage.Card) (duplicate bool, err error) {
	err = s.update(ctx, func(tx storage.Tx) error {
		duplicate = false
		if err := tx.DeleteOutbox(id); err != nil {
			return err
		}
		r, err := tx.Request(requestID)
		if err != nil {
			return fmt.Errorf("read request %s: %w", requestID, err)
		}
		for _, conversation := range []string{target, card.Conversation} {
			if _, ok := FindCard(r, card.Platform, conversation); ok {
				duplicate = true
				return nil
			}
		}
		r.Cards = append(r.Cards, card)
		return tx.UpdateRequest(r)
	})
	if err != nil {
		return false, fmt.Errorf("complete outbox entry %d: %w", id, err)
	}
	return duplicate, nil
}

// FindCard returns the request's card of platform in conversation.
func FindCard(r storage.Request, platform, conversation string) (storage.Card, bool) {
	for _, c := range r.Cards {
		if c.Platform == platform && c.Conversation == conversation {
			return c, true
		}
	}
	return storage.Card{}, false
}
