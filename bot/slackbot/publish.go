package slackbot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/bot/cards"
)

// publishError marks an error of Publish, whose channel is a witness of the
// audit log (audit.publish.slack): Classify names that key in its hints.
type publishError struct{ err error }

func (e *publishError) Error() string { return e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }

// Publish posts a signed checkpoint of the audit log to a witness channel
// with chat.postMessage: a sentence saying what it is, then the record line
// in a code block. The line is escaped as Slack asks (&, < and > as
// entities, which Slack shows, and copies, as the characters themselves),
// so nothing in it can mention anyone or make a link; links are not
// unfurled. The cards engine hands it printable ASCII without a backquote,
// so the code block cannot end early.
func (c slackChat) Publish(ctx context.Context, channel string, seq uint64, record string) error {
	_, _, err := c.b.api.PostMessageContext(ctx, channel,
		slack.MsgOptionText(checkpointText(seq, record), false),
		slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	if err != nil {
		return &publishError{fmt.Errorf("chat.postMessage (audit checkpoint seq %d to %s): %w", seq, channel, err)}
	}
	return nil
}

// checkpointText is the mrkdwn of a checkpoint message.
func checkpointText(seq uint64, record string) string {
	return fmt.Sprintf("signoff audit log checkpoint, seq %d. Keep the line below as it is: "+
		"`signoff audit verify --anchor FILE` checks the log against the lines you kept.\n```%s```", seq, escapeText(record))
}

// classifyPublish judges an error of Publish: a channel the app cannot
// post to and a refused token are errors only an operator can end, with a
// hint at the fix. Nothing makes a checkpoint Gone: it is retried until the
// witness has it.
func classifyPublish(err error, f cards.Failure) cards.Failure {
	switch errorCode(err) {
	case "ratelimited", "rate_limited":
		f.Kind = cards.RateLimited
		return f
	}
	return operatorFailure(err, f, "audit.publish.slack")
}
