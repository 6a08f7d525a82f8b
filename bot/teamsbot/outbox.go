package teamsbot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/internal/text"
)

// OutboxKind is the kind of outbox entry of the cards this adapter
// delivers; NoticeKind that of its notices to accounts.
const (
	OutboxKind = approvals.KindNotifyPrefix + Platform
	NoticeKind = approvals.KindNoticePrefix + Platform
)

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

// RunOutbox delivers "notify.teams" and "notice.teams" outbox entries,
// and the audit log's signed checkpoints for Teams witnesses (see
// Publish), until ctx ends: it claims due entries, posts or updates the
// cards, posts the notices and checkpoints, and sleeps PollInterval (on
// the bot's clock) when there is nothing to do. Errors are logged and retried; it returns ctx's error.
func (b *Bot) RunOutbox(ctx context.Context) error {
	return b.out.Run(ctx)
}

// DeliverOnce claims up to one batch of due "notify.teams" entries and
// delivers them in order, then one batch of "notice.teams" entries (see
// Notify). For an entry of event "created" it posts the card (POST
// {serviceUrl}/v3/conversations/{id}/activities) and stores the
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
// It returns how many entries it claimed (the larger of the two
// batches).
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
func (c teamsChat) activity(r approvals.Request) outActivity {
	action, _ := c.b.svc.Policy().Action(r.Action) // nil when no longer declared
	card := renderCard(cardInput{Request: r, Action: action, RequestURL: c.b.opts.RequestURL(r.ID)})
	return cardActivity(card, cards.Title(r)+" ("+cards.StateLabel(r)+")")
}

// Post posts the card to the conversation through the service URL
// learned for it (or teams.service_url).
func (c teamsChat) Post(ctx context.Context, r approvals.Request, conversation string) (approvals.Card, error) {
	serviceURL, err := c.b.serviceURLFor(ctx, conversation, "")
	if err != nil {
		return approvals.Card{}, err
	}
	id, err := c.b.api.post(ctx, serviceURL, conversation, c.activity(r))
	if err != nil {
		return approvals.Card{}, err
	}
	return approvals.Card{Platform: Platform, Conversation: conversation, MessageID: id, ServiceURL: serviceURL}, nil
}

// Update replaces the card's activity, through the conversation's latest
// service URL (else the one the card was posted through).
func (c teamsChat) Update(ctx context.Context, r approvals.Request, card approvals.Card) error {
	serviceURL, err := c.b.serviceURLFor(ctx, card.Conversation, card.ServiceURL)
	if err != nil {
		return err
	}
	return c.b.api.update(ctx, serviceURL, card.Conversation, card.MessageID, c.activity(r))
}

// Delete deletes a duplicate card's activity.
func (c teamsChat) Delete(ctx context.Context, card approvals.Card) error {
	return c.b.api.remove(ctx, card.ServiceURL, card.Conversation, card.MessageID)
}

// Reply posts text as a plain-text reply to the card's activity (POST
// {serviceUrl}/v3/conversations/{id}/activities/{activityId}, replyToId
// set): in a channel, a message in the card's thread; in a chat, a
// message after the card.
func (c teamsChat) Reply(ctx context.Context, card approvals.Card, msg string) error {
	serviceURL, err := c.b.serviceURLFor(ctx, card.Conversation, card.ServiceURL)
	if err != nil {
		return err
	}
	return c.b.api.reply(ctx, serviceURL, card.Conversation, card.MessageID, text.TruncateRunes(msg, maxNoticeRunes))
}

// maxNoticeRunes bounds a notice's text (Teams takes messages of about
// 28 KB; a notice is a few sentences).
const maxNoticeRunes = 4000

// Notify posts the notice as a plain-text message into the conversation
// the account clicked in (POST {serviceUrl}/v3/conversations/{id}/
// activities; a reply in the card's thread when the id names one), through
// the conversation's service URL, as for cards. Teams cannot write to an
// account outside a conversation the bot is in (the app is not installed
// for personal chats), so a notice without a conversation, or for a tenant
// no longer served, cannot be delivered: Classify says Gone and it is
// dropped. In a channel or group chat the message is seen by the
// conversation's members.
func (c teamsChat) Notify(ctx context.Context, n approvals.AccountNotice) error {
	if c.b.tenant(n.Workspace) == "" {
		return fmt.Errorf("teamsbot: notice to Teams account %s in tenant %q: %w", n.User, n.Workspace, errTenantNotServed)
	}
	if n.Conversation == "" || len(n.Conversation) > maxConversationIDLen {
		return fmt.Errorf("teamsbot: notice to Teams account %s: %w, and Teams cannot write to an account outside one", n.User, errNoConversation)
	}
	serviceURL, err := c.b.serviceURLFor(ctx, baseConversationID(n.Conversation), "")
	if err != nil {
		return err
	}
	msg := n.Text
	if !personalConversation(n.Conversation) && n.Public != "" {
		// Others read a channel or group chat: no names, no emails.
		msg = n.Public
	}
	return c.b.api.notice(ctx, serviceURL, n.Conversation, text.TruncateRunes(msg, maxNoticeRunes))
}

// personalConversation reports whether a Teams conversation id names a
// one-to-one chat with the bot (Teams gives those ids an "a:" prefix;
// channels and group chats have "19:" ids).
func personalConversation(id string) bool {
	return strings.HasPrefix(id, "a:")
}

// Classify: an error that is not the connector's means the service URL is
// unknown (the connector was not called), or, for a notice, that it has no
// conversation to go to (Gone); a 429 waits out its Retry-After, other
// failures back off (at least a 503's Retry-After); a 404 on an update
// means the card is gone, and a 404 or 403 on a notice that the
// conversation is gone or the app no longer in it; a refused token, a
// conversation the app is not in and a card the connector refuses are
// errors, with a hint at the fix where there is one. A checkpoint for a
// witness is judged by classifyPublish.
func (teamsChat) Classify(err error, conversation string) cards.Failure {
	if pub := (*publishError)(nil); errors.As(err, &pub) {
		return classifyPublish(err, conversation)
	}
	var ae *apiError
	if !errors.As(err, &ae) {
		if errors.Is(err, errNoConversation) || errors.Is(err, errTenantNotServed) {
			return cards.Failure{Kind: cards.Gone, Err: err}
		}
		return cards.Failure{Kind: cards.Unreachable, Err: err}
	}
	f := cards.Failure{Err: err, Wait: ae.RetryAfter}
	switch {
	case ae.Status == http.StatusTooManyRequests:
		f.Kind = cards.RateLimited
	case ae.Status == http.StatusNotFound && ae.Op == opUpdate:
		f.Kind = cards.Gone
		return f
	case ae.Op == opNotice && (ae.Status == http.StatusNotFound || ae.Status == http.StatusForbidden || ae.Status == http.StatusBadRequest):
		f.Kind = cards.Gone
		f.Err = fmt.Errorf("%w (the notice's conversation %q is gone, the signoff app is no longer in it, or the connector refused the message)", err, conversation)
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
