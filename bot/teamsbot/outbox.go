package teamsbot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/storage"
)

// Outbox delivery tuning (the same as the Slack adapter's).
const (
	// OutboxKind is the kind of outbox entry this adapter delivers.
	OutboxKind = approvals.KindNotifyPrefix + Platform
	// outboxBatch entries are claimed at a time and delivered one by one.
	outboxBatch = 5
	// outboxLease is how long a claimed batch is ours. It exceeds
	// outboxBatch × (a token fetch, a post and a delete) ×
	// DefaultCallTimeout, so a claim cannot run out while its delivery is
	// still in flight (which could post a card twice).
	outboxLease = 5 * time.Minute
	// forgetAfter: what the worker remembers about an entry is dropped
	// when the entry has not come back for this long.
	forgetAfter = 24 * time.Hour
	// backoffBase doubles with every attempt up to backoffMax.
	backoffBase = 2 * time.Second
	backoffMax  = 10 * time.Minute
	// waitForPost is how soon an update whose card is not posted yet is
	// tried again.
	waitForPost = 5 * time.Second
	// orphanAfter: an update whose card was never posted (e.g. the
	// conversation was added to notify.teams after the request was
	// created) posts the card itself once it has waited this long.
	orphanAfter = 15 * time.Minute
	// minRateLimitWait is waited on a 429 without a usable Retry-After.
	minRateLimitWait = time.Second
)

// deliveryState is what the outbox worker remembers between batches. It is
// per process: ordering and de-duplication across replicas rest on the
// outbox lease and on updates always rendering the current state.
type deliveryState struct {
	// mu serializes DeliverOnce: entries of one request and conversation
	// are delivered one at a time, in order.
	mu sync.Mutex
	// blocked holds, per request and conversation, the oldest entry that
	// could not be delivered yet and when it is due again; younger entries
	// for the same card wait behind it, so no update overtakes the post or
	// an earlier update.
	blocked map[string]blocker
	// delivered remembers entries whose connector call succeeded but whose
	// completion did not commit, so the next attempt completes them
	// without calling the connector again (no second post or update).
	delivered map[uint64]deliveredCard
}

type blocker struct {
	id    uint64
	until time.Time
}

type deliveredCard struct {
	post         bool
	conversation string
	activityID   string
	serviceURL   string
	at           time.Time
}

func newDeliveryState() *deliveryState {
	return &deliveryState{blocked: map[string]blocker{}, delivered: map[uint64]deliveredCard{}}
}

// prune forgets blockers long past due and deliveries whose entries never
// came back.
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

// RunOutbox delivers "notify.teams" outbox entries until ctx ends: it
// claims due entries, posts or updates the cards, and sleeps PollInterval
// (on the bot's clock) when there is nothing to do. Errors are logged and
// retried; it returns ctx's error.
func (b *Bot) RunOutbox(ctx context.Context) error {
	for {
		n, err := b.DeliverOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			b.log.Error("teams outbox pass failed; retrying", "err", err)
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

// DeliverOnce claims up to one batch of due "notify.teams" entries and
// delivers them in order. For an entry of event "created" it posts the
// card (POST {serviceUrl}/v3/conversations/{id}/activities) and stores the
// returned activity id, with the conversation and service URL, on the
// request in the same transaction that completes the entry; for any other
// event it updates that card (PUT …/activities/{activityId}) to the
// request as it stands. Entries of one request and conversation are
// delivered in commit order: an update waits until the card is posted and
// never overtakes an earlier update.
//
// A failed delivery (429 with its Retry-After, 5xx, a timeout, a
// conversation whose service URL is unknown) is rescheduled with backoff
// through approvals.Service.Retry, with the error recorded on the entry,
// never dropped. The one exception is an update of a card that no longer
// exists (404): it is completed and logged.
//
// Delivery is at least once in one narrow window: when the connector
// accepted a post but signoff crashed (or the network failed after the
// connector acted) before the completion committed, the retry posts the
// card again. A failed completion without a crash is not such a window:
// the activity id is kept in memory and the retry completes without
// posting. When two replicas race to post the same card, the loser
// deletes its message.
//
// It returns how many entries it claimed.
func (b *Bot) DeliverOnce(ctx context.Context) (int, error) {
	b.out.mu.Lock()
	defer b.out.mu.Unlock()
	b.out.prune(b.clock.Now())
	entries, err := b.svc.Claim(ctx, OutboxKind, outboxBatch, outboxLease)
	if err != nil {
		return 0, fmt.Errorf("teamsbot: %w", err)
	}
	var pauseUntil time.Time // set by a 429: the rest of the batch waits too
	for _, e := range entries {
		if ctx.Err() != nil {
			// The remaining entries stay claimed until their lease ends.
			return len(entries), ctx.Err()
		}
		now := b.clock.Now()
		if now.Before(pauseUntil) {
			b.reschedule(ctx, e, "", pauseUntil, errors.New("waiting out the Bot Connector's rate limit"))
			continue
		}
		if err := b.deliverEntry(ctx, e, &pauseUntil); err != nil {
			b.log.Error("teams outbox entry failed", "entry", e.ID, "request", e.RequestID, "err", err)
		}
	}
	return len(entries), nil
}

// deliverEntry delivers one claimed entry or reschedules it.
func (b *Bot) deliverEntry(ctx context.Context, e storage.OutboxEntry, pauseUntil *time.Time) error {
	var n approvals.Notification
	if err := json.Unmarshal(e.Payload, &n); err != nil || n.Target == "" {
		// Not something any attempt could deliver: our own queue holds it.
		b.log.Error("teams outbox entry has an unreadable payload; removing it", "entry", e.ID, "request", e.RequestID)
		return b.complete(ctx, e, "", nil)
	}
	key := e.RequestID + "\x00" + n.Target
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
		// The connector already has it; only the completion is missing.
		return b.finish(ctx, e, key, n, d)
	}

	r, err := b.svc.Get(ctx, e.RequestID)
	if err != nil {
		if errors.Is(err, approvals.ErrUnknownRequest) {
			b.log.Error("teams outbox entry names an unknown request; removing it", "entry", e.ID, "request", e.RequestID)
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

	cardURL := ""
	if hasCard {
		cardURL = card.ServiceURL
	}
	serviceURL, err := b.serviceURLFor(ctx, n.Target, cardURL)
	if err != nil {
		next := now.Add(backoff(e.Attempts))
		b.reschedule(ctx, e, key, next, err)
		b.log.Error("teams card cannot be delivered yet; will retry", "entry", e.ID, "request", e.RequestID, "conversation", n.Target, "attempt", e.Attempts, "retry_at", next, "err", err)
		return nil
	}

	a := cardActivity(renderCard(cardInput{Request: r, Action: action, RequestURL: b.requestURL(r.ID)}), headerTitle(r)+" ("+stateLabel(r)+")")
	callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	var d deliveredCard
	if post {
		id, err := b.api.post(callCtx, serviceURL, n.Target, a)
		if err != nil {
			return b.failed(ctx, e, key, n.Target, err, pauseUntil)
		}
		d = deliveredCard{post: true, conversation: n.Target, activityID: id, serviceURL: serviceURL, at: now}
	} else {
		err := b.api.update(callCtx, serviceURL, card.Conversation, card.MessageID, a)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			b.log.Error("the Teams card of a request cannot be updated any more (deleted?); giving up on this update",
				"request", r.ID, "conversation", card.Conversation, "err", err)
			return b.complete(ctx, e, key, nil)
		}
		if err != nil {
			return b.failed(ctx, e, key, n.Target, err, pauseUntil)
		}
		d = deliveredCard{conversation: card.Conversation, activityID: card.MessageID, serviceURL: serviceURL, at: now}
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
		r.Cards = append(r.Cards, storage.Card{Platform: Platform, Conversation: d.conversation, MessageID: d.activityID, ServiceURL: d.serviceURL})
		return tx.UpdateRequest(r)
	})
	if err == nil && duplicate {
		// Someone else posted this card first: take ours back.
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
		if derr := b.api.remove(callCtx, d.serviceURL, d.conversation, d.activityID); derr != nil {
			b.log.Warn("could not delete a duplicate Teams card", "request", e.RequestID, "conversation", d.conversation, "err", derr)
		}
	}
	return err
}

// complete removes a handled entry (running fn in the same transaction)
// and forgets what was remembered about it. When the completion fails,
// the entry is released for a prompt retry, which completes it without
// calling the connector again.
func (b *Bot) complete(ctx context.Context, e storage.OutboxEntry, key string, fn func(storage.Tx) error) error {
	err := b.svc.Complete(ctx, e.ID, fn)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		b.reschedule(ctx, e, key, b.clock.Now().Add(backoffBase), err)
		return fmt.Errorf("teamsbot: %w", err)
	}
	// ErrNotFound: another worker completed it after our lease ran out.
	delete(b.out.delivered, e.ID)
	if bl, ok := b.out.blocked[key]; ok && bl.id == e.ID {
		delete(b.out.blocked, key)
	}
	return nil
}

// failed reschedules an entry after a connector error: on a 429 after its
// Retry-After (and the rest of the batch with it), else with backoff (at
// least a 503's Retry-After).
func (b *Bot) failed(ctx context.Context, e storage.OutboxEntry, key, conversation string, err error, pauseUntil *time.Time) error {
	now := b.clock.Now()
	next := now.Add(backoff(e.Attempts))
	var ae *apiError
	errors.As(err, &ae)
	if ae != nil && ae.Status == http.StatusTooManyRequests {
		next = now.Add(max(ae.RetryAfter, minRateLimitWait))
		*pauseUntil = next
	} else if ae != nil && ae.RetryAfter > 0 {
		next = maxTime(next, now.Add(ae.RetryAfter))
	}
	cause := err
	level := b.log.Warn
	if ae != nil {
		switch ae.Status {
		case http.StatusUnauthorized:
			level = b.log.Error
			cause = fmt.Errorf("%w (the Bot Connector refused the bot's token: check teams.app_id, teams.app_password and teams.token_url)", err)
		case http.StatusForbidden, http.StatusNotFound:
			level = b.log.Error
			cause = fmt.Errorf("%w (is the signoff app installed in Teams conversation %q, and is the id in notify.teams right?)", err, conversation)
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			level = b.log.Error
		}
		if ae.Op == opToken {
			level = b.log.Error
			cause = fmt.Errorf("%w (check teams.app_id, teams.app_password and teams.token_url)", err)
		}
	}
	b.reschedule(ctx, e, key, next, cause)
	level("teams card delivery failed; will retry", "entry", e.ID, "request", e.RequestID, "conversation", conversation, "attempt", e.Attempts, "retry_at", next, "err", cause)
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
		b.log.Error("could not reschedule a teams outbox entry", "entry", e.ID, "err", err)
	}
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

// findCard returns the request's Teams card in conversation.
func findCard(r storage.Request, conversation string) (storage.Card, bool) {
	for _, c := range r.Cards {
		if c.Platform == Platform && c.Conversation == conversation {
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
