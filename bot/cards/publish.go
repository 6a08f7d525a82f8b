package cards

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

// deliverPublications claims the due checkpoints of the platform's
// witnesses, at most one per witness (its oldest), and posts each through
// Chat.Publish.
func (d *Deliverer) deliverPublications(ctx context.Context) (int, error) {
	entries, err := d.svc.ClaimPublications(ctx, d.publishKind, batch, lease)
	if err != nil {
		return 0, err
	}
	noKey := func(storage.OutboxEntry) string { return "" }
	return d.inOrder(ctx, entries, noKey, func(e storage.OutboxEntry, pauseUntil *time.Time) {
		d.publish(ctx, e, pauseUntil)
	})
}

// publish posts one claimed checkpoint to its witness, then completes the
// entry, which wakes the witness's next checkpoint; or reschedules it.
func (d *Deliverer) publish(ctx context.Context, e storage.OutboxEntry, pauseUntil *time.Time) {
	target, seq, ok := publication(d.cfg.Platform, e)
	if !ok {
		// Not something any attempt could deliver: our own queue holds it.
		d.log.Error(d.cfg.Platform+" checkpoint publication is unreadable; removing it", "entry", e.ID, "kind", e.Kind)
		d.completePublication(ctx, e, 0)
		return
	}
	if _, done := d.delivered[e.ID]; !done {
		callCtx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
		err := d.chat.Publish(callCtx, target, seq, string(e.Payload))
		cancel()
		if err != nil {
			d.publishFailed(ctx, e, target, seq, err, pauseUntil)
			return
		}
		d.delivered[e.ID] = delivery{at: d.clock.Now()}
	}
	d.completePublication(ctx, e, seq)
}

// completePublication completes a delivered (or undeliverable) checkpoint
// entry. When the completion fails, the entry is released for a prompt
// retry, which completes it without posting again.
func (d *Deliverer) completePublication(ctx context.Context, e storage.OutboxEntry, seq uint64) {
	err := d.svc.CompletePublication(ctx, e.ID, e.Kind)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		d.reschedule(ctx, e, "", d.clock.Now().Add(BackoffBase), err)
		d.log.Warn("a published "+d.cfg.Display+" checkpoint could not be completed; will retry", "entry", e.ID, "seq", seq, "err", err)
		return
	}
	// ErrNotFound: another worker completed it after our lease ran out.
	delete(d.delivered, e.ID)
}

// publishFailed reschedules a checkpoint the platform did not take: after
// a rate limit's wait (the rest of the batch waits too), else with
// backoff. Whatever the failure, the checkpoint is kept: a witness must not
// miss one.
func (d *Deliverer) publishFailed(ctx context.Context, e storage.OutboxEntry, target string, seq uint64, err error, pauseUntil *time.Time) {
	f := d.chat.Classify(err, target)
	if f.Err == nil {
		f.Err = err
	}
	now := d.clock.Now()
	next := now.Add(max(Backoff(e.Attempts), f.Wait))
	if f.Kind == RateLimited {
		next = now.Add(max(f.Wait, MinRateLimitWait))
		*pauseUntil = next
	}
	level := d.log.Warn
	if f.Severe || f.Kind == Gone || f.Kind == Unreachable {
		level = d.log.Error
	}
	d.reschedule(ctx, e, "", next, fmt.Errorf("checkpoint seq %d: %w", seq, f.Err))
	level("a signed checkpoint could not be published to a "+d.cfg.Display+" witness; will retry",
		"entry", e.ID, d.cfg.ConversationAttr, target, "seq", seq, "attempt", e.Attempts, "retry_at", next, "err", f.Err)
}

// publication reads a checkpoint entry of platform p: the witness's
// conversation and the checkpoint's seq. false when the kind names no
// conversation, or the payload is not a checkpoint record of printable
// ASCII without a backquote (every checkpoint signoff writes is one).
func publication(p string, e storage.OutboxEntry) (target string, seq uint64, ok bool) {
	target, ok = approvals.PublishTarget(p, e.Kind)
	if !ok {
		return "", 0, false
	}
	for _, c := range e.Payload {
		if c < 0x20 || c > 0x7e || c == '`' {
			return "", 0, false
		}
	}
	anchor, err := audit.ParseAnchor(e.Payload)
	if err != nil || strings.TrimSpace(string(e.Payload)) != string(e.Payload) {
		return "", 0, false
	}
	return target, anchor.Seq, true
}
