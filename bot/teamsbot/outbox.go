package teamsbot

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/storage"
)

// OutboxKind is the kind of outbox entry this adapter delivers.
const OutboxKind = approvals.KindNotifyPrefix + Platform

// newDeliverer returns the engine that delivers b's cards.
func newDeliverer(b *Bot) *cards.Deliverer {
	return cards.NewDeliverer(teamsChat{b}, cards.Config{
		Service:      b.svc,
		Platform:     Platform,
		Display:      "Teams",
		API:          "the Bot Connector",
		CallTimeout:  DefaultCallTimeout,
		PollInterval: b.opts.PollInterval,
		Clock:        b.clock,
		Logger:       b.log,
	})
}

// RunOutbox delivers "notify.teams" outbox entries until ctx ends: it
// claims due entries, posts or updates the cards, and sleeps PollInterval
// (on the bot's clock) when there is nothing to do. Errors are logged and
// retried; it returns ctx's error.
func (b *Bot) RunOutbox(ctx context.Context) error {
	return b.out.Run(ctx)
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
// exists (404): it is completed and logged. When two replicas race to
// post the same card, the loser deletes its message (DELETE
// …/activities/{activityId}). Package cards describes the guarantees in
// full, and the one window in which a card may be posted twice.
//
// It returns how many entries it claimed.
func (b *Bot) DeliverOnce(ctx context.Context) (int, error) {
	n, err := b.out.DeliverOnce(ctx)
	if err != nil && err != ctx.Err() {
		err = fmt.Errorf("teamsbot: %w", err)
	}
	return n, err
}

// teamsChat makes the Bot Connector calls of card delivery.
type teamsChat struct{ b *Bot }

// activity renders the request's card as a message activity.
func (c teamsChat) activity(r storage.Request) outActivity {
	action, _ := c.b.svc.Policy().Action(r.Action) // nil when no longer declared
	card := renderCard(cardInput{Request: r, Action: action, RequestURL: c.b.requestURL(r.ID)})
	return cardActivity(card, cards.Title(r)+" ("+cards.StateLabel(r)+")")
}

// Post posts the card to the conversation through the service URL
// learned for it (or teams.service_url).
func (c teamsChat) Post(ctx context.Context, r storage.Request, conversation string) (storage.Card, error) {
	serviceURL, err := c.b.serviceURLFor(ctx, conversation, "")
	if err != nil {
		return storage.Card{}, err
	}
	id, err := c.b.api.post(ctx, serviceURL, conversation, c.activity(r))
	if err != nil {
		return storage.Card{}, err
	}
	return storage.Card{Platform: Platform, Conversation: conversation, MessageID: id, ServiceURL: serviceURL}, nil
}

// Update replaces the card's activity, through the conversation's latest
// service URL (else the one the card was posted through).
func (c teamsChat) Update(ctx context.Context, r storage.Request, card storage.Card) error {
	serviceURL, err := c.b.serviceURLFor(ctx, card.Conversation, card.ServiceURL)
	if err != nil {
		return err
	}
	return c.b.api.update(ctx, serviceURL, card.Conversation, card.MessageID, c.activity(r))
}

// Delete deletes a duplicate card's activity.
func (c teamsChat) Delete(ctx context.Context, card storage.Card) error {
	return c.b.api.remove(ctx, card.ServiceURL, card.Conversation, card.MessageID)
}

// Classify: an error that is not the connector's means the service URL is
// unknown (the connector was not called); a 429 waits out its
// Retry-After, other failures back off (at least a 503's Retry-After); a
// 404 on an update means the card is gone; a refused token, a
// conversation the app is not in and a card the connector refuses are
// errors, with a hint at the fix where there is one.
func (teamsChat) Classify(err error, conversation string) cards.Failure {
	var ae *apiError
	if !errors.As(err, &ae) {
		return cards.Failure{Kind: cards.Unreachable, Err: err}
	}
	f := cards.Failure{Err: err, Wait: ae.RetryAfter}
	switch {
	case ae.Status == http.StatusTooManyRequests:
		f.Kind = cards.RateLimited
	case ae.Status == http.StatusNotFound && ae.Op == opUpdate:
		f.Kind = cards.Gone
		return f
	}
	switch ae.Status {
	case http.StatusUnauthorized:
		f.Severe = true
		f.Err = fmt.Errorf("%w (the Bot Connector refused the bot's token: check teams.app_id, teams.app_password and teams.token_url)", err)
	case http.StatusForbidden, http.StatusNotFound:
		f.Severe = true
		f.Err = fmt.Errorf("%w (is the signoff app installed in Teams conversation %q, and is the id in notify.teams right?)", err, conversation)
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		f.Severe = true
	}
	if ae.Op == opToken {
		f.Severe = true
		f.Err = fmt.Errorf("%w (check teams.app_id, teams.app_password and teams.token_url)", err)
	}
	return f
}
