package slackbot

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
)

// OutboxKind is the kind of outbox entry this adapter delivers.
const OutboxKind = approvals.KindNotifyPrefix + Platform

// newDeliverer returns the engine that delivers b's cards.
func newDeliverer(b *Bot) *cards.Deliverer {
	return cards.NewDeliverer(slackChat{b}, cards.Config{
		Service:          b.svc,
		Platform:         Platform,
		Display:          "Slack",
		ConversationAttr: "channel",
		CallTimeout:      DefaultCallTimeout,
		PollInterval:     b.opts.PollInterval,
		Clock:            b.clock,
		Logger:           b.log,
	})
}

// RunOutbox delivers "notify.slack" outbox entries (cards),
// "notice.slack" ones (direct messages to one account, see Notify) and the
// audit log's signed checkpoints for Slack witnesses (see Publish) until
// ctx ends: it claims due entries, posts or updates the cards, sends the
// notices and checkpoints, and sleeps PollInterval (on the bot's clock)
// when there is nothing to do. Errors are logged and retried; it returns ctx's error.
func (b *Bot) RunOutbox(ctx context.Context) error {
	return b.out.Run(ctx)
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
// Slack (message_not_found): its update is completed and logged. When two
// replicas race to post the same card, the loser deletes its message
// (chat.delete). Package cards describes the guarantees in full, and the
// one window in which a card may be posted twice.
//
// It returns how many entries it claimed.
func (b *Bot) DeliverOnce(ctx context.Context) (int, error) {
	n, err := b.out.DeliverOnce(ctx)
	if err != nil && err != ctx.Err() {
		err = fmt.Errorf("slackbot: %w", err)
	}
	return n, err
}

// slackChat makes the Slack Web API calls of card delivery.
type slackChat struct{ b *Bot }

// messageOptions renders the request's card as chat.postMessage and
// chat.update options.
func (c slackChat) messageOptions(r approvals.Request) []slack.MsgOption {
	action, _ := c.b.svc.Policy().Action(r.Action) // nil when no longer declared
	text, blocks := renderCard(cardInput{Request: r, Action: action, RequestURL: c.b.opts.RequestURL(r.ID)})
	return []slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionBlocks(blocks...),
		slack.MsgOptionDisableLinkUnfurl(),
		slack.MsgOptionDisableMediaUnfurl(),
	}
}

// Post posts the card with chat.postMessage.
func (c slackChat) Post(ctx context.Context, r approvals.Request, channel string) (approvals.Card, error) {
	posted, ts, err := c.b.api.PostMessageContext(ctx, channel, c.messageOptions(r)...)
	if err != nil {
		return approvals.Card{}, fmt.Errorf("chat.postMessage: %w", err)
	}
	if posted == "" {
		posted = channel
	}
	return approvals.Card{Platform: Platform, Conversation: posted, MessageID: ts}, nil
}

// Update updates the card with chat.update.
func (c slackChat) Update(ctx context.Context, r approvals.Request, card approvals.Card) error {
	if _, _, _, err := c.b.api.UpdateMessageContext(ctx, card.Conversation, card.MessageID, c.messageOptions(r)...); err != nil {
		return fmt.Errorf("chat.update: %w", err)
	}
	return nil
}

// Delete deletes a duplicate card with chat.delete.
func (c slackChat) Delete(ctx context.Context, card approvals.Card) error {
	_, _, err := c.b.api.DeleteMessageContext(ctx, card.Conversation, card.MessageID)
	return err
}

// Reply posts text in the card's thread: chat.postMessage to the card's
// channel with thread_ts set to the card's ts. The text is escaped, and
// links are not unfurled.
func (c slackChat) Reply(ctx context.Context, card approvals.Card, text string) error {
	if _, _, err := c.b.api.PostMessageContext(ctx, card.Conversation,
		slack.MsgOptionText(fitEscaped(text, maxNoticeLen, "…"), false),
		slack.MsgOptionTS(card.MessageID),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl()); err != nil {
		return fmt.Errorf("chat.postMessage (reply in the thread of %s in %s): %w", card.MessageID, card.Conversation, err)
	}
	return nil
}

// maxNoticeLen caps a notice's text (Slack shows at most about 4,000
// characters of a message's text before "Show more").
const maxNoticeLen = 3000

// noticeError marks an error of Notify, whose conversation is a direct
// message: Classify judges it differently from a card's. unusable marks a
// notice that no retry can deliver.
type noticeError struct {
	err      error
	unusable bool
}

func (e *noticeError) Error() string { return e.err.Error() }
func (e *noticeError) Unwrap() error { return e.err }

// Notify sends n.Text privately to n.User: chat.postMessage with the user
// id as the channel, which Slack delivers as a direct message from the
// app (its Messages tab). The text is escaped, so it cannot mention a
// channel or disguise a link, and links are not unfurled.
func (c slackChat) Notify(ctx context.Context, n approvals.AccountNotice) error {
	if !usableUserID(n.User) {
		return &noticeError{err: fmt.Errorf("chat.postMessage: %q is not a Slack user id", n.User), unusable: true}
	}
	_, _, err := c.b.api.PostMessageContext(ctx, n.User,
		slack.MsgOptionText(fitEscaped(n.Text, maxNoticeLen, "…"), false),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	if err != nil {
		return &noticeError{err: fmt.Errorf("chat.postMessage (direct message to %s): %w", n.User, err)}
	}
	return nil
}

// Classify: rate_limited waits out its Retry-After; a message that is
// gone or can no longer be edited gives its update up; a channel the app
// cannot post to and a refused token are errors with a hint at the fix.
// For a notice (a direct message), an account Slack cannot write to any
// more (deleted, unknown, the app's Messages tab turned off) gives the
// notice up: it is a courtesy, and the audit log holds the event.
// A checkpoint for a witness is never given up (classifyPublish).
func (slackChat) Classify(err error, _ string) cards.Failure {
	f := cards.Failure{Err: err}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		f.Kind, f.Wait = cards.RateLimited, rl.RetryAfter
	}
	var pub *publishError
	if errors.As(err, &pub) {
		return classifyPublish(err, f)
	}
	var notice *noticeError
	if errors.As(err, &notice) {
		if notice.unusable {
			f.Kind = cards.Gone
			return f
		}
		switch errorCode(err) {
		case "ratelimited", "rate_limited":
			f.Kind = cards.RateLimited
		case "user_not_found", "channel_not_found", "user_disabled", "cannot_dm_bot", "is_archived", "not_in_channel":
			f.Kind = cards.Gone
		case "messages_tab_disabled":
			f.Kind = cards.Gone
			f.Err = fmt.Errorf("%w (turn on the Messages tab in the Slack app's App Home settings so that signoff can write to people directly)", err)
		default:
			return tokenFailure(err, f)
		}
		return f
	}
	switch errorCode(err) {
	case "message_not_found", "cant_update_message", "edit_window_closed":
		f.Kind = cards.Gone
		return f
	}
	return operatorFailure(err, f, "notify.slack")
}

// operatorFailure marks f Severe, with a hint at the fix, when err is a
// failure only an operator can end: a channel the app cannot post to
// (listed in the setting named), or a bot token Slack refuses. Any other
// error leaves f as it is.
func operatorFailure(err error, f cards.Failure, setting string) cards.Failure {
	switch errorCode(err) {
	case "channel_not_found", "not_in_channel", "is_archived":
		f.Severe = true
		f.Err = fmt.Errorf("%w (invite the signoff app to the channel listed in %s, or fix the channel id)", err, setting)
		return f
	}
	return tokenFailure(err, f)
}

// tokenFailure marks f Severe, with a hint at the fix, when Slack refused
// the bot token or its scopes; any other error leaves f as it is.
func tokenFailure(err error, f cards.Failure) cards.Failure {
	switch errorCode(err) {
	case "invalid_auth", "not_authed", "token_revoked", "account_inactive", "missing_scope":
		f.Severe = true
		f.Err = fmt.Errorf("%w (check slack.bot_token and the app's scopes)", err)
	}
	return f
}
