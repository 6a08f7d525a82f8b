package teamsbot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/text"
)

// Content types of attachments and invoke responses.
const (
	contentTypeCard    = "application/vnd.microsoft.card.adaptive"
	contentTypeMessage = "application/vnd.microsoft.activity.message"
	contentTypeError   = "application/vnd.microsoft.error"
)

const (
	// maxResponseBytes bounds what is read of a connector answer.
	maxResponseBytes = 64 << 10
	// tokenEarlyRefresh: the bot's token is replaced this long before it
	// expires (or at half its lifetime, if that is shorter).
	tokenEarlyRefresh = 5 * time.Minute
)

// outActivity is an activity the bot sends. schema.Activity is not used
// for sending: it would serialize its zero times (an "expiration" in year
// 1 tells the channel the message is already expired) and empty structs.
type outActivity struct {
	Type        string              `json:"type"`
	ID          string              `json:"id,omitempty"`
	Text        string              `json:"text,omitempty"`
	TextFormat  string              `json:"textFormat,omitempty"`
	Summary     string              `json:"summary,omitempty"`
	ReplyToID   string              `json:"replyToId,omitempty"`
	Attachments []schema.Attachment `json:"attachments,omitempty"`
}

// cardActivity is a message carrying one Adaptive Card.
func cardActivity(card map[string]any, summary string) outActivity {
	return outActivity{
		Type:        "message",
		Summary:     summary,
		Attachments: []schema.Attachment{{ContentType: contentTypeCard, Content: card}},
	}
}

// apiError is a failed Bot Connector call.
type apiError struct {
	// Op names the call ("post activity").
	Op string
	// Status is the HTTP status; 0 when no answer came (Err says why).
	Status int
	// RetryAfter is the wait a 429 or 503 asked for; 0 when none.
	RetryAfter time.Duration
	// Code and Message are the connector's error body, when it sent one.
	Code    string
	Message string
	Err     error
}

func (e *apiError) Error() string {
	var b strings.Builder
	b.WriteString("bot connector: " + e.Op + ": ")
	switch {
	case e.Status == 0 && e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("HTTP " + strconv.Itoa(e.Status))
		if e.Code != "" {
			b.WriteString(" " + e.Code)
		}
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
	}
	return b.String()
}

func (e *apiError) Unwrap() error { return e.Err }

// Some apiError.Op values: the bot's own token could not be had; an
// activity update failed; a notice to an account was not posted; a member
// lookup failed.
const (
	opToken  = "get the bot's token"
	opUpdate = "update activity"
	opNotice = "post notice"
	opMember = "get conversation member"
)

// errNoServiceURL: a conversation has no known service URL.
var errNoServiceURL = errors.New("no service URL known")

// errHostNotAllowed: a call would have gone to a host that is not in
// teams.service_url_hosts; it was not made.
var errHostNotAllowed = errors.New("not in teams.service_url_hosts")

// connector calls the Bot Connector REST API (v3) with the bot's token.
type connector struct {
	http   *http.Client
	clock  clock.Clock
	tokens *tokenCache
	// hosts are the only hosts the bot's token is sent to.
	hosts hostlist.List
}

func newConnector(client *http.Client, clk clock.Clock, hosts hostlist.List, conf *clientcredentials.Config) *connector {
	// Microsoft's token endpoint takes the client credentials in the form
	// body.
	conf.AuthStyle = oauth2.AuthStyleInParams
	return &connector{http: client, clock: clk, hosts: hosts, tokens: &tokenCache{conf: conf, client: client, clock: clk}}
}

// tokenCache holds the bot's access token until shortly before it
// expires. The client secret is only ever sent to the token URL.
type tokenCache struct {
	conf   *clientcredentials.Config
	client *http.Client
	clock  clock.Clock

	mu    sync.Mutex
	token string
	until time.Time
}

// get returns a valid token, fetching one (client credentials grant) when
// none is cached. Callers wait for one fetch at a time.
func (c *tokenCache) get(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.clock.Now().Before(c.until) {
		return c.token, nil
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, c.client)
	tok, err := c.conf.Token(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			// The body is the token endpoint's; it never holds our secret.
			return "", fmt.Errorf("get the bot's access token from %s: HTTP %d %s %s", c.conf.TokenURL, re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
		}
		return "", fmt.Errorf("get the bot's access token from %s: %w", c.conf.TokenURL, err)
	}
	lifetime := time.Minute
	if !tok.Expiry.IsZero() {
		lifetime = time.Until(tok.Expiry)
	}
	early := min(tokenEarlyRefresh, lifetime/2)
	c.token, c.until = tok.AccessToken, c.clock.Now().Add(lifetime-early)
	return c.token, nil
}

// invalidate drops the cached token (the connector refused it).
func (c *tokenCache) invalidate(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

// activitiesURL is {serviceUrl}/v3/conversations/{id}/activities[/{activityId}].
func activitiesURL(serviceURL, conversation, activityID string) string {
	u := strings.TrimSuffix(serviceURL, "/") + "/v3/conversations/" + url.PathEscape(conversation) + "/activities"
	if activityID != "" {
		u += "/" + url.PathEscape(activityID)
	}
	return u
}

// post sends a new activity to a conversation and returns its id.
func (c *connector) post(ctx context.Context, serviceURL, conversation string, a outActivity) (string, error) {
	var rr schema.ResourceResponse
	if err := c.do(ctx, "post activity", http.MethodPost, activitiesURL(serviceURL, conversation, ""), a, &rr); err != nil {
		return "", err
	}
	if rr.ID == "" {
		return "", &apiError{Op: "post activity", Status: http.StatusOK, Message: "the answer names no activity id"}
	}
	return rr.ID, nil
}

// reply sends a message in reply to activity replyTo.
func (c *connector) reply(ctx context.Context, serviceURL, conversation, replyTo, text string) error {
	a := outActivity{Type: "message", Text: text, TextFormat: "plain", ReplyToID: replyTo}
	return c.do(ctx, "reply", http.MethodPost, activitiesURL(serviceURL, conversation, replyTo), a, nil)
}

// update replaces an activity the bot sent.
func (c *connector) update(ctx context.Context, serviceURL, conversation, activityID string, a outActivity) error {
	a.ID = activityID
	return c.do(ctx, opUpdate, http.MethodPut, activitiesURL(serviceURL, conversation, activityID), a, nil)
}

// notice posts a plain-text message into a conversation (a thread reply
// when the conversation id names a thread, ";messageid=…").
func (c *connector) notice(ctx context.Context, serviceURL, conversation, text string) error {
	a := outActivity{Type: "message", Text: text, TextFormat: "plain"}
	var rr schema.ResourceResponse
	return c.do(ctx, opNotice, http.MethodPost, activitiesURL(serviceURL, conversation, ""), a, &rr)
}

// memberURL is {serviceUrl}/v3/conversations/{id}/members/{memberId}.
func memberURL(serviceURL, conversation, memberID string) string {
	return strings.TrimSuffix(serviceURL, "/") + "/v3/conversations/" + url.PathEscape(conversation) + "/members/" + url.PathEscape(memberID)
}

// member looks one member of a conversation up (GET …/members/{id}).
func (c *connector) member(ctx context.Context, serviceURL, conversation, memberID string) (teamsMember, error) {
	var m teamsMember
	err := c.do(ctx, opMember, http.MethodGet, memberURL(serviceURL, conversation, memberID), nil, &m)
	return m, err
}

// remove deletes an activity the bot sent.
func (c *connector) remove(ctx context.Context, serviceURL, conversation, activityID string) error {
	return c.do(ctx, "delete activity", http.MethodDelete, activitiesURL(serviceURL, conversation, activityID), nil, nil)
}

func (c *connector) do(ctx context.Context, op, method, u string, in, out any) error {
	// The URL is built from a service URL that came over the network (an
	// activity, then the store): check the host it really names before
	// the token is even fetched.
	if _, err := c.hosts.CheckURL(u); err != nil {
		return fmt.Errorf("bot connector: %s: not called: %w (%w)", op, err, errHostNotAllowed)
	}
	token, err := c.tokens.get(ctx)
	if err != nil {
		return &apiError{Op: opToken, Err: err}
	}
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return &apiError{Op: op, Err: fmt.Errorf("encode: %w", err)}
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return &apiError{Op: op, Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &apiError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return &apiError{Op: op, Status: resp.StatusCode, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out != nil && len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				return &apiError{Op: op, Status: resp.StatusCode, Err: fmt.Errorf("decode answer: %w", err)}
			}
		}
		return nil
	}
	ae := &apiError{Op: op, Status: resp.StatusCode}
	var er schema.ErrorResponse
	if json.Unmarshal(raw, &er) == nil {
		ae.Code, ae.Message = er.Error.Code, text.TruncateRunes(er.Error.Message, 300)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		ae.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), c.clock.Now())
	}
	if resp.StatusCode == http.StatusUnauthorized {
		c.tokens.invalidate(token)
	}
	return ae
}

// retryAfter reads a Retry-After header: delay seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, time.Hour)
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}
