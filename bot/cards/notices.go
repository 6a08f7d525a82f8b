package cards

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// MaxNoticeAttempts bounds how often a notice to a chat account (a link
// made, refused or replaced) is tried. A notice is a courtesy to the
// account's owner; the event itself is in the audit log. One that still
// fails after this many attempts (about forty minutes of backoff) is dropped and
// logged as an error.
const MaxNoticeAttempts = 12

// deliverNotices claims up to one batch of due "notice.<platform>" entries
// and sends each to its chat account through Chat.Notify.
func (d *Deliverer) deliverNotices(ctx context.Context) (int, error) {
	entries, err := d.svc.Claim(ctx, d.noticeKind, batch, lease)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			return len(entries), ctx.Err()
		}
		d.deliverNotice(ctx, e)
	}
	return len(entries), nil
}

func (d *Deliverer) deliverNotice(ctx context.Context, e storage.OutboxEntry) {
	var n approvals.AccountNotice
	if json.Unmarshal(e.Payload, &n) != nil || n.User == "" || n.Text == "" {
		d.log.Error(d.cfg.Platform+" notice has an unreadable payload; removing it", "entry", e.ID)
		_ = d.complete(ctx, e, "")
		return
	}
	callCtx, cancel := context.WithTimeout(ctx, d.cfg.CallTimeout)
	err := d.chat.Notify(callCtx, n)
	cancel()
	if err == nil {
		if cerr := d.complete(ctx, e, ""); cerr != nil {
			d.log.Warn("a delivered "+d.cfg.Platform+" notice could not be completed; it may be sent again", "entry", e.ID, "err", cerr)
		}
		return
	}
	f := d.chat.Classify(err, n.Conversation)
	if f.Err == nil {
		f.Err = err
	}
	if f.Kind == Gone || e.Attempts >= MaxNoticeAttempts {
		d.log.Error("a "+d.cfg.Display+" notice to a chat account cannot be delivered; dropping it (the audit log holds the event)",
			"entry", e.ID, "user", n.User, "attempts", e.Attempts, "err", f.Err)
		_ = d.complete(ctx, e, "")
		return
	}
	next := d.clock.Now().Add(max(Backoff(e.Attempts), f.Wait))
	if f.Kind == RateLimited {
		next = d.clock.Now().Add(max(f.Wait, MinRateLimitWait))
	}
	d.reschedule(ctx, e, "", next, fmt.Errorf("notice to %s: %w", n.User, f.Err))
	d.log.Warn(d.cfg.Platform+" notice delivery failed; will retry", "entry", e.ID, "user", n.User, "attempt", e.Attempts, "retry_at", next, "err", f.Err)
}
