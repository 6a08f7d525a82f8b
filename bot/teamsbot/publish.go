package teamsbot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/signoff-dev/signoff/bot/cards"
)

// publishError marks an error of Publish, whose conversation is a witness
// of the audit log (audit.publish.teams): Classify names that key in its
// hints.
type publishError struct{ err error }

func (e *publishError) Error() string { return e.err.Error() }
func (e *publishError) Unwrap() error { return e.err }

// Publish posts a signed checkpoint of the audit log into a witness
// conversation (POST {serviceUrl}/v3/conversations/{id}/activities,
// through the conversation's service URL as for cards): a sentence saying
// what it is, then the record line in a preformatted block. The message is
// Teams' HTML subset (textFormat "xml") with &, < and > written as
// entities, so nothing in the line is read as markup and Teams shows it
// as it is.
func (c teamsChat) Publish(ctx context.Context, conversation string, seq uint64, record string) error {
	serviceURL, err := c.b.serviceURLFor(ctx, baseConversationID(conversation), "")
	if err != nil {
		return &publishError{err}
	}
	a := outActivity{
		Type:       "message",
		TextFormat: "xml",
		Text:       checkpointHTML(seq, record),
		Summary:    fmt.Sprintf("signoff audit log checkpoint, seq %d", seq),
	}
	if _, err := c.b.api.post(ctx, serviceURL, conversation, a); err != nil {
		return &publishError{err}
	}
	return nil
}

// htmlText escapes text for the content of an HTML element.
var htmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// checkpointHTML is the text of a checkpoint message.
func checkpointHTML(seq uint64, record string) string {
	return fmt.Sprintf("signoff audit log checkpoint, seq %d. Keep the line below as it is: "+
		"<code>signoff audit verify --anchor FILE</code> checks the log against the lines you kept.<pre>%s</pre>", seq, htmlText.Replace(record))
}

// classifyPublish judges an error of Publish: a conversation whose service
// URL is unknown waits (Unreachable); a 429 waits out its Retry-After;
// a refused token, a conversation the app is not in and a message the
// connector refuses are errors only an operator can end, with a hint at
// the fix. Nothing makes a checkpoint Gone: it is retried until the
// witness has it.
func classifyPublish(err error, conversation string) cards.Failure {
	var ae *apiError
	if !errors.As(err, &ae) {
		return cards.Failure{Kind: cards.Unreachable, Err: err}
	}
	f := cards.Failure{Err: err, Wait: ae.RetryAfter}
	switch {
	case ae.Op == opToken || ae.Status == http.StatusUnauthorized:
		f.Severe = true
		f.Err = fmt.Errorf("%w (check teams.app_id, teams.app_password and teams.token_url)", err)
	case ae.Status == http.StatusTooManyRequests:
		f.Kind = cards.RateLimited
	case ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound:
		f.Severe = true
		f.Err = fmt.Errorf("%w (is the signoff app installed in Teams conversation %q, and is the id in audit.publish.teams right?)", err, conversation)
	case ae.Status == http.StatusBadRequest || ae.Status == http.StatusRequestEntityTooLarge:
		f.Severe = true
	}
	return f
}
