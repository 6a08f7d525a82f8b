package slackbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// Outbox delivery tuning.
const (
	// OutboxKind is the kind of outbox entry this adapter delivers.
	OutboxKind = approvals.KindNotifyPrefix + Platform
	// outboxBatch entries are claimed at a time and delivered one by one.
	outboxBatch = 5
	// outboxLease is how long a claimed batch is ours. It exceeds
	// outboxBatch × 2 × DefaultCallTimeout (a post, and a delete when a
	// race was lost), so a claim cannot run out while its delivery is
	// still in flight (which could post a card twice).
	outboxLease = 5 * time.Minute
	// forgetAfter: what the worker remembers about an entry (a blocker,
	// a delivery awaiting completion) is dropped when the entry has not
	// come back for this long; another replica has handled it.
	forgetAfter = 24 * time.Hour
	// backoffBase doubles with every attempt up to backoffMax.
	backoffBase = 2 * time.Second
	backoffMax  = 10 * time.Minute
	// waitForPost is how soon an update whose card is not posted yet is
	// tried again.
	waitForPost = 5 * time.Second
	// orphanAfter: an update whose card was never posted (e.g. the channel
	// was added to notify.slack after the request was created) posts the
	// card itself once it has waited this long.
	orphanAfter = 15 * time.Minute
	// minRateLimitWait is waited on a 429 without a usable Retry-After.
	minRateLimitWait = time.Second
)

// deliveryState is what the outbox worker remembers between batches. It is
// per process: ordering and de-duplication across replicas rest on the
// outbox lease and on updates always rendering the current state.
type deliveryState struct {
	// mu serializes DeliverOnce: entries of one request and channel are
	// delivered one at a time, in order.
	mu sync.Mutex
	// blocked holds, per request and channel, the oldest entry that could
	// not be delivered yet and when it is due again; younger entries for
	// the same card wait behind it so that no update overtakes the post or
	// an earlier update.
	blocked map[string]blocker
	// delivered remembers entries whose Slack call succeeded but whose
	// completion did not commit, so that the next attempt completes them
	// without calling Slack again (no second post, no second update).
	delivered map[uint64]deliveredCard
}

type blocker struct {
	id    uint64
	until time.Time
}

type deliveredCard struct {
	post    bool
	channel string
	ts      string
	at      time.Time
}

// prune forgets what no longer matters: blockers long past due and
// deliveries whose entries never came back.
func (s *deliveryState) prune(now time.Time) {
	for k, bl := range s.blocked {
		if now.Sub(bl.until) > forgetAfter {
			delete(s.blocked, k)
		}
	}
	for id, d := range s.delivered {
		if now.Sub(d.at) > forgetAfter {
			delete(s.delivered, id)
		}
	}
}

func newDeliveryState() *deliveryState {
	return &deliveryState{blocked: map[string]blocker{}, delivered: map[uint64]deliveredCard{}}
}

// RunOutbox delivers "notify.slack" outbox entries until ctx ends: it
// claims due entries, posts or updates the cards, and sleeps
// PollInterval (on the bot's clock) when there is nothing to do. Errors
// are logged and retried; it returns ctx's error.
func (b *Bot) RunOutbox(ctx context.Context) error {
	for {
		n, err := b.DeliverOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.log.Error("slack outbox pass failed; retrying", "err", err)
		}
		if n == outboxBatch && err == nil {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-b.clock.After(b.opts.PollInterval):
		}
	}
}

// DeliverOnce claims up to one batch of due "notify.slack" entries and
// delivers them in order. For an entry of event "created" it posts the card
// (chat.postMessage) and stores the message's channel and ts on the request
// in the same transaction that completes the entry; for any other event it
// updates that card (chat.update) to the request as it stands. Entries of
// one request and channel are delivered in commit order: an update waits
// until the card is posted and never overtakes an earlier update.
//
// A failed delivery (a Slack error, rate_limited with its Retry-After, a
// timeout) is rescheduled with backoff through approvals.Service.Retry,
// never dropped. The one exception is a card that no longer exists in
// Slack (message_not_found): its update is completed and logged.
//
// Delivery is at least once in one narrow window: when Slack accepted a
// post but signoff crashed (or the network failed after Slack acted, e.g.
// a timeout or 5xx after the message was created) before the completion
// committed, the retry posts the card again. A failed completion without
// a crash is not such a window: the posted ts is kept in memory and the
// retry completes without posting. When two replicas race to post the
// same card, the loser deletes its message.
//
// It returns how many entries it claimed.
func (b *Bot) DeliverOnce(ctx context.Context) (int, error) {
	b.out.mu.Lock()
	defer b.out.mu.Unlock()
	b.out.prune(b.clock.Now())
	entries, err := b.svc.Claim(ctx, OutboxKind, outboxBatch, outboxLease)
	if err != nil {
		return 0, fmt.Errorf("slackbot: %w", err)
	}
	var pauseUntil time.Time // set by a 429: the rest of the batch waits too
	for _, e := range entries {
		if ctx.Err() != nil {
			// The remaining entries stay claimed until their lease ends.
			return len(entries), ctx.Err()
		}
		now := b.clock.Now()
		if now.Before(pauseUntil) {
			b.reschedule(ctx, e, entryKey(e), pauseUntil, errors.New("waiting out Slack's rate limit"))
			continue
		}
		if err := b.deliverEntry(ctx, e, &pauseUntil); err != nil {
			b.log.Error("slack outbox entry failed", "entry", e.ID, "request", e.RequestID, "err", err)
		}
	}
	return len(entries), nil
}

// deliverEntry delivers one claimed entry or reschedules it.
func (b *Bot) deliverEntry(ctx context.Context, e storage.OutboxEntry, pauseUntil *time.Time) error {
	var n approvals.Notification
	if err := json.Unmarshal(e.Payload, &n); err != nil || n.Target == "" {
		// Not something any attempt could deliver: our own queue holds it.
		b.log.Error("slack outbox entry has an unreadable payload; removing it", "entry", e.ID, "request", e.RequestID)
		return b.complete(ctx, e, "", nil)
	}
	key := entryKey(e)
	now := b.clock.Now()

	if bl, ok := b.out.blocked[key]; ok && bl.id != e.ID {
		switch {
		case bl.id > e.ID:
			// A younger entry is waiting (e.g. for this post): go first.
		case now.After(bl.until.Add(outboxLease)):
			// The blocker was not seen again here: another replica
			// delivered it, or it is gone.
			delete(b.out.blocked, key)
		default:
			b.reschedule(ctx, e, key, maxTime(bl.until, now), fmt.Errorf("waiting for outbox entry %d of the same card", bl.id))
			return nil
		}
	}

	if d, ok := b.out.delivered[e.ID]; ok {
		// Slack already has it; only the completion is missing.
		return b.finish(ctx, e, key, n, d)
	}

	r, err := b.svc.Get(ctx, e.RequestID)
	if err != nil {
		if errors.Is(err, approvals.ErrUnknownRequest) {
			b.log.Error("slack outbox entry names an unknown request; removing it", "entry", e.ID, "request", e.RequestID)
			return b.complete(ctx, e, key, nil)
		}
		b.reschedule(ctx, e, key, now.Add(backoff(e.Attempts)), err)
		return err
	}
	action, _ := b.svc.Policy().Action(r.Action) // nil when no longer declared
	card, hasCard := findCard(r, n.Target)

	post := n.Event == approvals.EventCreated
	if !post && !hasCard {
		if now.Sub(e.CreatedAt) < orphanAfter {
			b.reschedule(ctx, e, key, now.Add(waitForPost), errors.New("the card is not posted yet"))
			return nil
		}
		post = true // the card was never posted: post it now
	}
	if post && hasCard {
		// Posted already (a race with another replica, or an update that
		// posted an orphaned card): nothing left to do.
		return b.complete(ctx, e, key, nil)
	}

	text, blocks := renderCard(cardInput{Request: r, Action: action, RequestURL: b.requestURL(r.ID)})
	opts := []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
	callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	var d deliveredCard
	if post {
		channel, ts, err := b.api.PostMessageContext(callCtx, n.Target, opts...)
		if err != nil {
			return b.failed(ctx, e, key, "chat.postMessage", err, pauseUntil)
		}
		if channel == "" {
			channel = n.Target
		}
		d = deliveredCard{post: true, channel: channel, ts: ts, at: now}
	} else {
		_, _, _, err := b.api.UpdateMessageContext(callCtx, card.Conversation, card.MessageID, opts...)
		if err != nil {
			switch errorCode(err) {
			case "message_not_found", "cant_update_message", "edit_window_closed":
				b.log.Error("the Slack card of a request cannot be updated any more (deleted?); giving up on this update",
					"request", r.ID, "channel", card.Conversation, "slack_error", errorCode(err))
				return b.complete(ctx, e, key, nil)
			}
			return b.failed(ctx, e, key, "chat.update", err, pauseUntil)
		}
		d = deliveredCard{channel: card.Conversation, ts: card.MessageID, at: now}
	}
	b.out.delivered[e.ID] = d
	return b.finish(ctx, e, key, n, d)
}

// finish completes a delivered entry; a post stores its card in the same
// transaction.
func (b *Bot) finish(ctx context.Context, e storage.OutboxEntry, key string, n approvals.Notification, d deliveredCard) error {
	if !d.post {
		return b.complete(ctx, e, key, nil)
	}
	var duplicate bool
	err := b.complete(ctx, e, key, func(tx storage.Tx) error {
		duplicate = false
		r, err := tx.Request(e.RequestID)
		if err != nil {
			return fmt.Errorf("read request %s: %w", e.RequestID, err)
		}
		if _, ok := findCard(r, n.Target); ok {
			duplicate = true
			return nil
		}
		if _, ok := findCard(r, d.channel); ok {
			duplicate = true
			return nil
		}
		r.Cards = append(r.Cards, storage.Card{Platform: Platform, Conversation: d.channel, MessageID: d.ts})
		return tx.UpdateRequest(r)
	})
	if err == nil && duplicate {
		// Someone else posted this card first: take ours back.
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
		if _, _, derr := b.api.DeleteMessageContext(callCtx, d.channel, d.ts); derr != nil {
			b.log.Warn("could not delete a duplicate Slack card", "request", e.RequestID, "channel", d.channel, "err", derr)
		}
	}
	return err
}

// complete removes a handled entry (running fn in the same transaction)
// and forgets what was remembered about it. When the completion fails,
// the entry is released for a prompt retry, which will complete it
// without calling Slack again.
func (b *Bot) complete(ctx context.Context, e storage.OutboxEntry, key string, fn func(storage.Tx) error) error {
	err := b.svc.Complete(ctx, e.ID, fn)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		b.reschedule(ctx, e, key, b.clock.Now().Add(backoffBase), err)
		return fmt.Errorf("slackbot: %w", err)
	}
	// ErrNotFound: another worker completed it after our lease ran out.
	delete(b.out.delivered, e.ID)
	if bl, ok := b.out.blocked[key]; ok && bl.id == e.ID {
		delete(b.out.blocked, key)
	}
	return nil
}

// failed reschedules an entry after a Slack error: on rate_limited after
// its Retry-After (and the rest of the batch with it), else with backoff.
func (b *Bot) failed(ctx context.Context, e storage.OutboxEntry, key, method string, err error, pauseUntil *time.Time) error {
	now := b.clock.Now()
	next := now.Add(backoff(e.Attempts))
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		next = now.Add(max(rl.RetryAfter, minRateLimitWait))
		*pauseUntil = next
	}
	cause := fmt.Errorf("%s: %w", method, err)
	b.reschedule(ctx, e, key, next, cause)
	level := b.log.Warn
	switch errorCode(err) {
	case "channel_not_found", "not_in_channel", "is_archived":
		level = b.log.Error
		cause = fmt.Errorf("%w (invite the signoff app to the channel listed in notify.slack, or fix the channel id)", cause)
	case "invalid_auth", "not_authed", "token_revoked", "account_inactive", "missing_scope":
		level = b.log.Error
		cause = fmt.Errorf("%w (check slack.bot_token and the app's scopes)", cause)
	}
	level("slack card delivery failed; will retry", "entry", e.ID, "request", e.RequestID, "attempt", e.Attempts, "retry_at", next, "err", cause)
	return nil
}

// reschedule releases a claimed entry for another attempt at next and,
// when key is set, makes younger entries of the same card wait behind it.
func (b *Bot) reschedule(ctx context.Context, e storage.OutboxEntry, key string, next time.Time, cause error) {
	if key != "" {
		if bl, ok := b.out.blocked[key]; !ok || bl.id >= e.ID {
			b.out.blocked[key] = blocker{id: e.ID, until: next}
		}
	}
	if err := b.svc.Retry(context.WithoutCancel(ctx), e.ID, next, cause); err != nil {
		// The lease runs out on its own; the entry is retried then.
		b.log.Error("could not reschedule a slack outbox entry", "entry", e.ID, "err", err)
	}
}

// entryKey names the card an entry is for (request and channel); "" when
// the payload is unreadable.
func entryKey(e storage.OutboxEntry) string {
	var n approvals.Notification
	if json.Unmarshal(e.Payload, &n) != nil || n.Target == "" {
		return ""
	}
	return e.RequestID + "\x00" + n.Target
}

// backoff is the wait after the given attempt: backoffBase doubling, at
// most backoffMax.
func backoff(attempts int) time.Duration {
	d := backoffBase
	for i := 1; i < attempts && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// findCard returns the request's Slack card in channel.
func findCard(r storage.Request, channel string) (storage.Card, bool) {
	for _, c := range r.Cards {
		if c.Platform == Platform && c.Conversation == channel {
			return c, true
		}
	}
	return storage.Card{}, false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
