package cards

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// Reminders
//
// A Deliverer also delivers its platform's "remind.<platform>" entries
// (approvals.KindRemindPrefix), each due when an action's remind says: it
// reads the request, drops the reminder of a request no longer pending,
// and otherwise replies in the thread of the request's card in the
// entry's conversation (Chat.Reply) with ReminderText, then completes the
// entry through approvals.Service.CompleteReminder, which queues the next
// reminder in the same transaction. A reminder whose card is not posted
// yet waits with backoff; a card gone from the platform skips that one
// reminder. As for cards, a reply the platform took whose completion did
// not commit is completed on the next attempt without replying again.
//
// An overdue announcement (approvals.Reminder.Overdue) takes the same
// path with OverdueText, and is delivered whatever the review's state by
// then: it reports break_glass.unreviewed, which is on the record either
// way, and its text says how a review decided meanwhile ended.

// deliverReminders claims up to one batch of due reminders and delivers
// them.
func (d *Deliverer) deliverReminders(ctx context.Context) (int, error) {
	entries, err := d.svc.Claim(ctx, d.remindKind(), batch, lease)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return len(entries), ctx.Err()
		}
		if err := d.deliverReminder(ctx, e); err != nil {
			d.log.Error(d.cfg.Platform+" reminder failed", "entry", e.ID, "request", e.RequestID, "err", err)
		}
	}
	return len(entries), nil
}

func (d *Deliverer) remindKind() string { return approvals.KindRemindPrefix + d.cfg.Platform }

func (d *Deliverer) deliverReminder(ctx context.Context, e storage.OutboxEntry) error {
	rem, ok := approvals.ReadReminder(e)
	if !ok {
		d.log.Error(d.cfg.Platform+" reminder has an unreadable payload; removing it", "entry", e.ID, "request", e.RequestID)
		return d.completeReminder(ctx, e)
	}
	if _, ok := d.delivered[e.ID]; ok {
		return d.completeReminder(ctx, e) // replied already; only the completion is missing
	}
	now := d.clock.Now()
	r, err := d.svc.Get(ctx, e.RequestID)
	if err != nil {
		if errors.Is(err, approvals.ErrUnknownRequest) {
			return d.completeReminder(ctx, e)
		}
		d.reschedule(ctx, e, "", now.Add(Backoff(e.Attempts)), err)
		return err
	}
	action, aerr := d.svc.Policy().Action(r.Action)
	var text string
	switch {
	case rem.Overdue:
		if !approvals.IsBreakGlassReview(r) {
			return d.completeReminder(ctx, e)
		}
		text = OverdueText(r, action) // delivered even if reviewed meanwhile
	case r.State != storage.StatePending || aerr != nil || action.Remind == nil:
		return d.completeReminder(ctx, e) // decided: reminders stop
	default:
		text = ReminderText(r, action, rem.Number)
	}
	card, ok := Find(r, d.cfg.Platform, rem.Target)
	if !ok {
		d.reschedule(ctx, e, "", now.Add(max(Backoff(e.Attempts), waitForPost)), errors.New("the card is not posted yet"))
		return nil
	}
	callCtx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	err = d.chat.Reply(callCtx, card, text)
	cancel()
	if err != nil {
		f := d.chat.Classify(err, card.Conversation)
		if f.Err == nil {
			f.Err = err
		}
		if f.Kind == Gone {
			d.log.Warn("the "+d.cfg.Display+" card of a request is gone; skipping its reminder", "request", e.RequestID, d.cfg.ConversationAttr, card.Conversation, "err", f.Err)
			return d.completeReminder(ctx, e)
		}
		next := now.Add(max(Backoff(e.Attempts), f.Wait))
		if f.Kind == RateLimited {
			next = now.Add(max(f.Wait, MinRateLimitWait))
		}
		d.reschedule(ctx, e, "", next, fmt.Errorf("reminder in %s: %w", card.Conversation, f.Err))
		d.log.Warn(d.cfg.Platform+" reminder failed; will retry", "entry", e.ID, "request", e.RequestID, d.cfg.ConversationAttr, card.Conversation, "retry_at", next, "err", f.Err)
		return nil
	}
	d.delivered[e.ID] = delivery{card: card, at: now}
	return d.completeReminder(ctx, e)
}

// completeReminder completes a handled reminder (queueing the next one);
// on failure it releases it for a prompt retry, which completes it
// without replying again.
func (d *Deliverer) completeReminder(ctx context.Context, e storage.OutboxEntry) error {
	return d.settle(ctx, e, "", d.svc.CompleteReminder(ctx, e.ID))
}

// ReminderText is reminder n of pending request r under action a: what
// waits, for how many more approvals, and who could still approve (the
// approver groups and the users named, less those who voted).
func ReminderText(r storage.Request, a *policy.Action, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Reminder")
	if a.Remind != nil && a.Remind.Max > 1 {
		fmt.Fprintf(&b, " %d of %d", n, a.Remind.Max)
	}
	need := max(r.MinApprovals-Approvals(r), 0)
	fmt.Fprintf(&b, ": %s for %s is still pending, %d more approval%s needed.", Title(r), RequesterName(r.Requester), need, Plural(need))
	if who := couldApprove(r, a); who != "" {
		b.WriteString(" Who can approve: " + who + ".")
	}
	return OneLine(b.String())
}

// OverdueText announces break-glass review r, still pending when it was
// due: which request it reviews, who broke glass and when, and who can
// review it under a (nil when the action is no longer declared, which
// names nobody). A review decided by the time this is delivered says how
// it ended instead of asking for it.
func OverdueText(r storage.Request, a *policy.Action) string {
	var b strings.Builder
	fmt.Fprintf(&b, "BREAK-GLASS review overdue: request %s", r.BreakGlass.Reviews)
	if base, ok := strings.CutSuffix(r.Action, policy.ReviewSuffix); ok {
		fmt.Fprintf(&b, " (%s)", base)
	}
	fmt.Fprintf(&b, " by %s was approved without votes at %s and was due for review by %s.",
		RequesterName(r.Requester), overdueTime(r.CreatedAt), overdueTime(r.BreakGlass.Due))
	switch r.State {
	case storage.StatePending:
		need := max(r.MinApprovals-Approvals(r), 0)
		fmt.Fprintf(&b, " It is still not reviewed: review %s needs %d more approval%s.", r.ID, need, Plural(need))
		who := ""
		if a != nil {
			who = couldApprove(r, a)
		}
		if who == "" {
			who = "nobody is configured"
		}
		b.WriteString(" Reviewers: " + who + ".")
	case storage.StateCancelled:
		fmt.Fprintf(&b, " Review %s has since been cancelled, without a review.", r.ID)
	default:
		fmt.Fprintf(&b, " Review %s has since been %s.", r.ID, r.State)
	}
	return OneLine(b.String())
}

func overdueTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// couldApprove names who could still approve r: the approver groups, and
// the users named who have not voted.
func couldApprove(r storage.Request, a *policy.Action) string {
	var parts []string
	if len(a.Approvers.Groups) > 0 {
		parts = append(parts, "members of "+strings.Join(a.Approvers.Groups, ", "))
	}
	var users []string
	for _, u := range a.Approvers.Users {
		voted := false
		for _, v := range r.Votes {
			if strings.EqualFold(v.Approver.Subject, u) || strings.EqualFold(v.Approver.Email, u) {
				voted = true
			}
		}
		if !voted {
			users = append(users, u)
		}
	}
	if len(users) > 0 {
		parts = append(parts, strings.Join(users, ", "))
	}
	return strings.Join(parts, "; ")
}
