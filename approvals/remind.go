package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Reminders, escalation and the requester's notice (an action's remind,
// escalate and notify.requester).
//
// Reminders and escalation are outbox entries due in the future
// (OutboxEntry.NextAttempt is when they are due), written in the
// transaction that creates the request, so they survive restarts and, like
// every outbox entry, are claimed with a lease by one worker across
// replicas:
//
//   - escalation is a "notify.<platform>" entry of event EventEscalated per
//     escalate.notify conversation, due at created + after: the Deliverer
//     posts the card there and stores it on the request
//     (RecordCardPosted), so every later change updates it too
//     (queueNotify adds the escalated conversations once after has
//     passed);
//   - a reminder is a "remind.<platform>" entry (Reminder) per notify
//     conversation, due at created + every: the Deliverer replies in the
//     card's thread and completes it with CompleteReminder, which queues
//     the next reminder (up to max) in the same transaction;
//   - a break-glass review still pending when it is due is announced once
//     in its card's thread: a "remind.<platform>" entry marked Overdue per
//     notify conversation, due at once, written with its
//     break_glass.unreviewed record (markUnreviewed).
//
// A decided request keeps its future entries until they come due: the
// Deliverer reads the request when it claims one and drops a reminder, or
// an escalation, of a request decided before it was due. The overdue
// announcement is the exception: it reports what the record already
// holds, so it is delivered even when the review was decided meanwhile,
// its text then saying how the review ended. Deciding touches
// no timer, so the decide transaction stays as short as it was.

// KindRemindPrefix + platform ("remind.slack") replies in a card's thread
// to remind its conversation of a pending request (Reminder).
const KindRemindPrefix = "remind."

// EventEscalated is a notification's event when a request is escalated:
// the card is posted to a conversation of escalate.notify.
const EventEscalated = "escalated"

// Reminder is the payload of a "remind.<platform>" outbox entry.
type Reminder struct {
	// Target is the conversation (of the action's notify list) whose card
	// is reminded.
	Target string `json:"target"`
	// Number counts the reminders of this card, from 1.
	Number int `json:"number"`
	// Overdue marks the announcement of a break-glass review still
	// pending when it was due (break_glass.within), queued once with its
	// break_glass.unreviewed record (breakglass.go): Number is 1, and
	// completing it queues nothing after it.
	Overdue bool `json:"overdue,omitempty"`
}

// ReadReminder reads a "remind.<platform>" entry's payload; false when it
// is unreadable.
func ReadReminder(e storage.OutboxEntry) (Reminder, bool) {
	var r Reminder
	if json.Unmarshal(e.Payload, &r) != nil || r.Target == "" || r.Number < 1 {
		return Reminder{}, false
	}
	return r, true
}

// queueTimers queues new request r's first reminder of each card and its
// escalation, each due in the future, on every running platform.
func (s *Service) queueTimers(tx storage.Tx, a *policy.Action, r storage.Request) error {
	now := s.clock.Now().UTC()
	for _, p := range s.opts.Platforms {
		if a.Remind != nil {
			for _, t := range a.Notify.Targets(p) {
				if err := s.queueReminder(tx, p, r, Reminder{Target: t, Number: 1}, a.Remind.At(r.CreatedAt, 1), now); err != nil {
					return err
				}
			}
		}
		if a.Escalate == nil {
			continue
		}
		for _, t := range a.Escalate.Notify.Targets(p) {
			if slices.Contains(a.Notify.Targets(p), t) {
				continue // the card is there already
			}
			if err := queueNotification(tx, p, r.ID, Notification{Event: EventEscalated, Target: t}, r.CreatedAt.Add(a.Escalate.After).UTC(), now); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Service) queueReminder(tx storage.Tx, p string, r storage.Request, rem Reminder, due, now time.Time) error {
	payload, err := json.Marshal(rem)
	if err != nil {
		return fmt.Errorf("encode reminder: %w", err)
	}
	if _, err := tx.Enqueue(storage.OutboxEntry{
		RequestID:   r.ID,
		Kind:        KindRemindPrefix + p,
		Payload:     payload,
		NextAttempt: due.UTC(),
		CreatedAt:   now,
	}); err != nil {
		return fmt.Errorf("queue %s reminder %d of %s: %w", p, rem.Number, r.ID, err)
	}
	return nil
}

// EscalationDue reports whether a request created at created, of the named
// action, was due to be escalated by at: false when the action is no
// longer declared or no longer escalates.
func (s *Service) EscalationDue(action string, created, at time.Time) bool {
	a, err := s.policy.Action(action)
	return err == nil && a.Escalate != nil && !at.Before(created.Add(a.Escalate.After))
}

// CompleteReminder removes delivered reminder entry id and, in the same
// transaction, queues the card's next reminder while the request is
// pending and the action's remind.max is not reached. A reminder slot that
// passed while nobody could deliver (signoff was down) is skipped, not
// made up: the next reminder is the first one due after now.
//
// An error wraps storage.ErrNotFound when the entry is gone (another
// worker completed it).
func (s *Service) CompleteReminder(ctx context.Context, id uint64) error {
	err := s.update(ctx, func(tx storage.Tx) error {
		e, err := tx.Outbox(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteOutbox(id); err != nil {
			return err
		}
		rem, ok := ReadReminder(e)
		if !ok || rem.Overdue || len(e.Kind) <= len(KindRemindPrefix) {
			return nil
		}
		r, err := tx.Request(e.RequestID)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && r.State != storage.StatePending) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read request %s: %w", e.RequestID, err)
		}
		a, err := s.policy.Action(r.Action)
		if err != nil || a.Remind == nil || a.Remind.Every <= 0 {
			return nil
		}
		now := s.clock.Now().UTC()
		next := max(rem.Number+1, int(now.Sub(r.CreatedAt)/a.Remind.Every)+1)
		if next > a.Remind.Max {
			return nil
		}
		rem.Number = next
		return s.queueReminder(tx, e.Kind[len(KindRemindPrefix):], r, rem, a.Remind.At(r.CreatedAt, next), now)
	})
	if err != nil {
		return fmt.Errorf("complete reminder %d: %w", id, err)
	}
	return nil
}

// queueRequesterNotice tells the requester of decided request r the
// decision, when its action says so (notify.requester): a notice to every
// chat account whose link names the requester, recognised exactly as
// self-approval recognises them (policy.IsSelf of the requester's person,
// or of the requester's email, against the link's identity). Stale links
// (the IdP no longer backs them) are skipped.
//
// The links are found by reading them all: a link is one per approver's
// chat account, so there are few, and the store keeps no index by person.
func (s *Service) queueRequesterNotice(tx storage.Tx, r storage.Request) error {
	a, err := s.policy.Action(r.Action)
	if err != nil || !a.NotifyRequester || (r.Requester.Person == "" && r.Requester.Email == "") {
		return nil
	}
	if len(s.opts.Platforms) == 0 {
		return nil // no adapter could deliver a notice
	}
	links, err := tx.Links(storage.LinkFilter{})
	if err != nil {
		return fmt.Errorf("read links for the requester's notice: %w", err)
	}
	text, public := requesterNoticeText(r)
	for _, l := range links {
		if l.Stale {
			continue
		}
		person := identity.FromLink(l).Person()
		if person.EmailUnverified {
			// The notice tells this account someone's decision: an email
			// the IdP did not vouch for does not name its owner (the
			// self-approval check, which only refuses, still reads it).
			person.Email = ""
		}
		if !policy.IsSelf(r.Requester.Person, person) && !policy.IsSelf(r.Requester.Email, person) {
			continue
		}
		if err := s.queueNotice(tx, l.Platform, AccountNotice{
			Workspace: l.Workspace, User: l.PlatformUser, Conversation: l.Conversation,
			Text: text, Public: public,
		}); err != nil {
			return err
		}
	}
	return nil
}

// requesterNoticeText is the requester's notice of decided request r, and
// the same without anything personal for a conversation others read.
func requesterNoticeText(r storage.Request) (text, public string) {
	outcome := string(r.State)
	switch r.State {
	case storage.StateExpired:
		outcome = "expired: nobody decided in time"
	case storage.StateCancelled:
		outcome = "cancelled"
		if r.DecidedBy == "admin" {
			outcome = "cancelled by a signoff admin"
		}
	}
	public = fmt.Sprintf("signoff request %s (%s) was %s.", r.ID, r.Action, outcome)
	return "Your " + public, "The " + public
}
