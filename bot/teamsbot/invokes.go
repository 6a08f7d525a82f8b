package teamsbot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/infracloudio/msbotbuilder-go/schema"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/internal/text"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// invokeAdaptiveCardAction is the invoke a card's Action.Execute sends.
const invokeAdaptiveCardAction = "adaptiveCard/action"

// maxRequestIDLen bounds the request id a button may carry.
const maxRequestIDLen = 200

// maxUserIDLen bounds the clicker's account id (an Entra object id is a
// 36-character GUID). The id goes into audit records, and an unbounded one
// could make a record longer than audit.MaxLineBytes, which no verifier
// accepts.
const maxUserIDLen = 128

// activity is an incoming activity: schema.Activity with the fields whose
// shape varies by activity type or client shadowed as raw JSON, so an
// unexpected timestamp format or value type cannot fail the decoding of
// what signoff reads.
type activity struct {
	schema.Activity
	Timestamp      json.RawMessage `json:"timestamp,omitempty"`
	LocalTimestamp json.RawMessage `json:"localTimestamp,omitempty"`
	Expiration     json.RawMessage `json:"expiration,omitempty"`
	Value          json.RawMessage `json:"value,omitempty"`
	ChannelData    json.RawMessage `json:"channelData,omitempty"`
	Entities       json.RawMessage `json:"entities,omitempty"`
}

// channelData is the part of Teams' channelData signoff reads.
type channelData struct {
	Tenant struct {
		ID string `json:"id"`
	} `json:"tenant"`
	Channel struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"channel"`
	Team struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"team"`
	EventType string `json:"eventType"`
}

// invokeResponse is the body of the answer to an adaptiveCard/action
// invoke (Universal Actions' response format).
type invokeResponse struct {
	StatusCode int    `json:"statusCode"`
	Type       string `json:"type"`
	Value      any    `json:"value"`
}

func messageResponse(text string) invokeResponse {
	return invokeResponse{StatusCode: http.StatusOK, Type: contentTypeMessage, Value: text}
}

func cardResponse(card map[string]any) invokeResponse {
	return invokeResponse{StatusCode: http.StatusOK, Type: contentTypeCard, Value: card}
}

func errorResponse(status int, code, message string) invokeResponse {
	return invokeResponse{StatusCode: status, Type: contentTypeError, Value: map[string]string{"code": code, "message": message}}
}

// handleMessages serves POST /teams/messages. It verifies the bearer token
// before it reads the body, then ties the token to the activity and checks
// the tenant. An adaptiveCard/action invoke is answered with the vote's
// outcome (well inside Teams' five seconds: see answerClick); installation
// and conversationUpdate activities teach it conversations' service URLs;
// a message carrying a card's Action.Submit fallback data is a click from
// an older client, answered with a reply in the conversation.
func (b *Bot) handleMessages(w http.ResponseWriter, r *http.Request) {
	tok, aerr := b.verifier.verify(r.Context(), r.Header.Get("Authorization"))
	if aerr != nil {
		b.refuse(w, r, "", aerr)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, b.opts.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			b.refuse(w, r, "", &authError{Reason: chatflow.RejectBodyTooLarge, Detail: fmt.Sprintf("the body is larger than %d bytes", b.opts.MaxBodyBytes), Status: http.StatusRequestEntityTooLarge})
			return
		}
		b.refuse(w, r, "", &authError{Reason: chatflow.RejectUnreadableBody, Detail: "the body could not be read", Status: http.StatusBadRequest})
		return
	}
	var act activity
	if err := json.Unmarshal(body, &act); err != nil {
		chatflow.WriteError(w, http.StatusBadRequest, "bad_activity", "the body is not a Bot Framework activity JSON object")
		return
	}
	if aerr := tok.checkActivity(act.ServiceURL, act.ChannelID); aerr != nil {
		b.refuse(w, r, "", aerr)
		return
	}
	// The bot answers at serviceUrl with its own token: a host not listed
	// is refused before anything is stored or called.
	if _, err := b.hosts.CheckURL(act.ServiceURL); err != nil {
		b.refuse(w, r, "", unauthorized(rejectServiceURLHost, "the activity's serviceUrl is refused: %s (teams.service_url_hosts lists the hosts accepted)", text.TruncateRunes(err.Error(), 300)))
		return
	}
	var cd channelData
	if len(act.ChannelData) > 0 {
		_ = json.Unmarshal(act.ChannelData, &cd) // unreadable: no tenant, refused below
	}
	tenant := b.tenant(cd.Tenant.ID)
	if tenant == "" || (act.Conversation.TenantID != "" && !strings.EqualFold(act.Conversation.TenantID, tenant)) {
		b.refuse(w, r, cd.Tenant.ID, &authError{Reason: rejectWrongTenant, Status: http.StatusForbidden,
			Detail: fmt.Sprintf("activity from tenant %q, which is not in teams.tenant_ids", cd.Tenant.ID)})
		return
	}

	switch act.Type {
	case schema.Invoke:
		b.learnLater(&act, cd, tenant)
		if act.Name != invokeAdaptiveCardAction {
			w.WriteHeader(http.StatusOK)
			return
		}
		b.handleInvoke(w, r, &act, tenant)
	case schema.Message:
		b.learnLater(&act, cd, tenant)
		b.handleSubmitFallback(&act, tenant)
		w.WriteHeader(http.StatusOK)
	case schema.ConversationUpdate, schema.InstallationUpdate:
		if err := b.learn(r.Context(), &act, cd, tenant); err != nil {
			b.log.Error("could not store a teams conversation", "conversation", act.Conversation.ID, "err", err)
		}
		w.WriteHeader(http.StatusOK)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// refuse answers an activity that failed verification and audits it.
func (b *Bot) refuse(w http.ResponseWriter, r *http.Request, tenant string, aerr *authError) {
	b.rejectCallback(r.Context(), tenant, aerr.Reason)
	// Anyone can send these without a credential: the sampled "callback
	// rejected" line (approvals) tells operators, this one with its detail
	// only at debug, so a flood cannot fill the log.
	b.log.Debug("teams activity refused", "reason", aerr.Reason, "status", aerr.Status, "tenant", text.TruncateRunes(tenant, 64), "err", aerr.Detail)
	msg := "the request could not be verified as coming from the Bot Framework"
	if aerr.Status == http.StatusForbidden {
		msg = "this signoff does not serve that Microsoft Entra tenant"
	}
	chatflow.WriteError(w, aerr.Status, string(aerr.Reason), msg)
}

// learnLater stores the activity's conversation references after the
// answer.
func (b *Bot) learnLater(act *activity, cd channelData, tenant string) {
	a := *act
	b.spawn(func(ctx context.Context) {
		if err := b.learn(ctx, &a, cd, tenant); err != nil {
			b.log.Error("could not store a teams conversation", "conversation", a.Conversation.ID, "err", err)
		}
	})
}

// click is one vote attempt from Teams.
type click struct {
	tenant, user string
	// conversation, serviceURL and replyTo say where the click came from
	// (for replies to the Action.Submit fallback).
	conversation string
	serviceURL   string
	replyTo      string
	personal     bool
	callbackID   string
	requestID    string
	decision     approvals.Decision
	reason       string
}

// platformUser names the clicking account, with the conversation it
// clicked in: a sign-in attempt remembers it, so that signoff can ask
// Teams who owns the account (LookupAccount) and write to it there. An id
// too long to keep is left out (the lookup then asks for another click).
func (c click) platformUser() linkflow.PlatformUser {
	conv := c.conversation
	if len(conv) > maxConversationIDLen || !utf8.ValidString(conv) {
		conv = ""
	}
	return linkflow.PlatformUser{Platform: Platform, Workspace: c.tenant, UserID: c.user, Conversation: conv}
}

func (c click) source() approvals.Source {
	return approvals.Source{Platform: Platform, Workspace: c.tenant, PlatformUser: c.user, CallbackID: c.callbackID}
}

// flowClick is c as the click flow takes it.
func (c click) flowClick() chatflow.Click {
	return chatflow.Click{Account: c.platformUser(), Source: c.source(), RequestID: c.requestID, Decision: c.decision, Reason: c.reason}
}

// newClick builds a click from an activity and the button's data; it
// returns a problem for the clicker when the data is unusable.
func newClick(act *activity, tenant, verb string, d voteData) (click, string) {
	c := click{
		tenant: tenant, user: act.From.AadObjectID,
		conversation: act.Conversation.ID, serviceURL: act.ServiceURL, replyTo: act.ReplyToID,
		personal:   act.Conversation.ConversationType == "personal",
		callbackID: text.TruncateRunes(act.ID, 200), requestID: strings.TrimSpace(d.RequestID),
		reason: strings.TrimSpace(strings.ToValidUTF8(d.Comment, "\uFFFD")),
	}
	if verb == "" {
		verb = d.Decision
	}
	switch verb {
	case VerbApprove:
		c.decision = approvals.DecisionApprove
	case VerbDeny:
		c.decision = approvals.DecisionDeny
	default:
		return c, fmt.Sprintf("unknown action %q; signoff's buttons are approve and deny", text.TruncateRunes(verb, 50))
	}
	if c.requestID == "" || len(c.requestID) > maxRequestIDLen || d.Kind != voteKind {
		return c, "the card's button carries no signoff request id"
	}
	if c.user == "" {
		return c, "Teams did not say who clicked (no Microsoft Entra object id), so the click cannot count. Guests and accounts outside the tenant cannot vote."
	}
	if len(c.user) > maxUserIDLen || !utf8.ValidString(c.user) {
		return c, "Teams sent a Microsoft Entra object id signoff cannot use for who clicked, so the click cannot count."
	}
	c.reason = text.CutRunes(c.reason, maxCommentInput)
	return c, ""
}

// handleInvoke answers an adaptiveCard/action invoke. A repeated invoke
// with the same activity id (Teams retries when an answer is slow) gets
// the first one's answer and does nothing else.
func (b *Bot) handleInvoke(w http.ResponseWriter, r *http.Request, act *activity, tenant string) {
	var v struct {
		Action struct {
			Type string          `json:"type"`
			Verb string          `json:"verb"`
			Data json.RawMessage `json:"data"`
		} `json:"action"`
	}
	var d voteData
	if err := json.Unmarshal(act.Value, &v); err != nil || v.Action.Type != "Action.Execute" || json.Unmarshal(v.Action.Data, &d) != nil {
		writeInvoke(w, errorResponse(http.StatusBadRequest, "BadRequest", "this is not an Action.Execute from a signoff card"))
		return
	}
	c, problem := newClick(act, tenant, v.Action.Verb, d)
	if problem != "" {
		writeInvoke(w, errorResponse(http.StatusBadRequest, "BadRequest", problem))
		return
	}
	key := ""
	if act.ID != "" {
		key = tenant + "\x00" + act.ID
	}
	entry, first := b.invokes.begin(key, b.clock.Now())
	if !first {
		select {
		case <-entry.done:
			b.log.Info("teams invoke repeated; answering it as before", "activity", c.callbackID, "user", c.user)
			writeInvokeBody(w, entry.body)
		case <-r.Context().Done():
		case <-b.clock.After(b.opts.ResolveTimeout + time.Second):
			writeInvoke(w, messageResponse("Still working on your first click; check the card in a moment."))
		}
		return
	}
	var body []byte
	// Release repeats waiting for this answer even if answering panics.
	defer func() { entry.finish(body) }()
	body, err := json.Marshal(b.answerClick(c).invokeResponse())
	if err != nil {
		b.log.Error("could not encode a teams invoke response", "request", c.requestID, "err", err)
		body, _ = json.Marshal(messageResponse("Something went wrong on signoff's side; nothing was counted. Click again in a minute."))
	}
	writeInvokeBody(w, body)
}

// handleSubmitFallback handles a click from a client without Universal
// Actions: the card's Action.Submit fallback arrives as a message activity
// whose value is the button's data. There is no invoke response to carry
// the answer, so it is posted as a reply in the conversation: privately in
// a personal chat; in a channel or group chat, where everybody would see
// it, without any sign-in link.
func (b *Bot) handleSubmitFallback(act *activity, tenant string) {
	var d voteData
	if len(act.Value) == 0 || json.Unmarshal(act.Value, &d) != nil || d.Kind != voteKind {
		return // an ordinary message: signoff has nothing to say
	}
	c, problem := newClick(act, tenant, "", d)
	key := ""
	if act.ID != "" {
		key = tenant + "\x00" + act.ID
	}
	entry, first := b.invokes.begin(key, b.clock.Now())
	if !first {
		return
	}
	ok := b.spawn(func(ctx context.Context) {
		defer entry.finish(nil)
		text := problem
		if problem == "" {
			a := b.answerClick(c)
			text = a.replyText(c.personal)
		}
		if c.serviceURL == "" || c.conversation == "" {
			return
		}
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
		if err := b.api.reply(callCtx, c.serviceURL, c.conversation, c.replyTo, text); err != nil {
			b.log.Warn("could not reply to a teams click", "conversation", c.conversation, "user", c.user, "err", err)
		}
	})
	if !ok {
		entry.finish(nil)
		b.log.Warn("teams click arrived during shutdown; not acted on", "user", c.user)
	}
}

// answer is what a click did, for the clicker.
type answer struct {
	// card is the refreshed card after a counted vote.
	card map[string]any
	// text says what happened.
	text string
	// signIn is a sign-in URL meant for the clicker alone.
	signIn string
}

func (a answer) invokeResponse() invokeResponse {
	if a.card != nil {
		return cardResponse(a.card)
	}
	text := a.text
	if a.signIn != "" {
		text += " Sign in here (the link is yours alone, works once and expires in a few minutes): " + a.signIn
	}
	return messageResponse(text)
}

func (a answer) replyText(private bool) string {
	text := a.text
	if a.signIn != "" {
		if private {
			text += " Sign in here (the link works once and expires in a few minutes): " + a.signIn
		} else {
			text += " Your Teams client is too old to show a private answer, so the sign-in link is not posted here: update Teams and click again."
		}
	}
	return text
}

// answerClick handles a click in the foreground, fast enough for Teams'
// five-second invoke deadline: the vote is a local commit and happens
// before the answer; the identity check, which may refresh the groups at
// the IdP, is bounded by ResolveTimeout (boundedResolver): when it runs
// out the answer is "checking your identity, click again in a moment" and
// the check goes on in the background, so the next click finds the link
// fresh. (A slow check does not cast the vote later on its own: the person
// clicked once and was told nothing counted.) Audit records of clicks that
// never reached approvals are written after the answer.
func (b *Bot) answerClick(c click) answer {
	// Over the account's limit on clicks the answer says when to try
	// again; nothing reaches approvals or the audit log.
	if msg := b.opts.Clicks.Allow(Platform, c.tenant, c.user); msg != "" {
		b.log.Debug("teams click over the per-account limit; not acted on", "user", c.user, "tenant", c.tenant)
		return answer{text: "⏳ " + msg}
	}
	done, ok := b.track()
	if !ok {
		return answer{text: restartingText}
	}
	defer done()
	ctx, cancel := context.WithTimeout(b.work.Context(), DefaultWorkTimeout)
	defer cancel()
	return b.render(c, b.flow().Click(ctx, c.flowClick()))
}

const (
	checkingIdentityText = "⏳ Checking your identity with the identity provider is taking a moment; nothing was counted yet. Click again in a moment."
	restartingText       = "signoff is restarting; nothing was counted. Click again in a moment."
)

// render is the answer to a click that came to o.
func (b *Bot) render(c click, o chatflow.Outcome) answer {
	switch o.Kind {
	case chatflow.Counted:
		action, _ := b.svc.Policy().Action(o.Request.Action)
		return answer{
			card: renderCard(cardInput{Request: o.Request, Action: action, RequestURL: b.opts.RequestURL(o.Request.ID)}),
			text: countedText(o, c.decision),
		}
	case chatflow.Duplicate:
		return answer{text: fmt.Sprintf("You already voted %s on this request; it counts once.", c.decision)}
	case chatflow.Refused:
		text := "🚫 Not counted: " + o.Refusal.Message
		if errors.Is(o.Refusal, approvals.ErrReasonRequired) {
			text += " (type it in the Reason field on the card)"
		}
		return answer{text: text}
	case chatflow.SignInNeeded:
		return answer{text: "🔗 " + o.Message + " Nothing was counted this time.", signIn: o.SignInURL}
	case chatflow.StepUpNeeded:
		return answer{
			text:   fmt.Sprintf("🔐 This action needs a fresh sign-in before your %s counts; your vote is recorded when the sign-in completes.", c.decision),
			signIn: o.SignInURL,
		}
	case chatflow.StepUpAndReason:
		return answer{text: "⚠️ Action " + o.Action.Name + " needs both a reason and a fresh sign-in to " + string(c.decision) +
			", which a Teams vote cannot carry together yet. Nothing was counted; ask an operator to record this decision another way."}
	case chatflow.IdentityUnavailable:
		switch {
		case errors.Is(o.Err, errStillChecking):
			return answer{text: checkingIdentityText}
		case errors.Is(o.Err, errShuttingDown):
			return answer{text: restartingText}
		}
		b.log.Warn("could not resolve a teams account's identity", "user", c.user, "tenant", c.tenant, "err", o.Err)
		return answer{text: "⚠️ Your identity could not be confirmed with the identity provider right now, so nothing was counted. Try again in a minute."}
	case chatflow.Failed:
		b.log.Error("recording a teams vote failed", "request", c.requestID, "user", c.user, "err", o.Err)
	default:
		// ReasonNeeded needs a reason dialog, which the Teams flow does
		// not ask for: the reason comes with the card.
		b.log.Error("unexpected outcome of a teams click", "request", c.requestID, "kind", o.Kind)
	}
	return answer{text: "⚠️ Your vote could not be recorded because of an internal error; nothing was counted. Try again in a minute."}
}

// errStillChecking is boundedResolver's answer when ResolveTimeout ran out
// before the resolver's.
var errStillChecking = errors.New("teamsbot: still checking the identity")

// boundedResolver is the bot's IdentityResolver as the click flow sees it:
// each call waits at most ResolveTimeout and then reports
// errStillChecking. The call itself goes on, on the bot's work context
// rather than the caller's (which ends with the answer), so a slow IdP
// refresh still completes for the next click.
type boundedResolver struct{ b *Bot }

// ResolvesStoredLinks is the wrapped resolver's answer (chatflow.StoredLinks).
func (r boundedResolver) ResolvesStoredLinks() bool {
	sl, ok := r.b.res.(chatflow.StoredLinks)
	return ok && sl.ResolvesStoredLinks()
}

func (r boundedResolver) Resolve(_ context.Context, p linkflow.PlatformUser) (oidc.Identity, error) {
	id, timedOut, err := bounded(r.b, func(ctx context.Context) (oidc.Identity, error) {
		return r.b.res.Resolve(ctx, p)
	})
	if timedOut {
		r.b.log.Info("resolving a teams account took too long; asked to click again", "user", p.UserID, "tenant", p.Workspace, "timeout", r.b.opts.ResolveTimeout)
		return id, errStillChecking
	}
	return id, err
}

func (r boundedResolver) BeginStepUp(_ context.Context, p linkflow.PlatformUser, requestID, decision string) (string, error) {
	u, timedOut, err := bounded(r.b, func(ctx context.Context) (string, error) {
		return r.b.res.BeginStepUp(ctx, p, requestID, decision)
	})
	if timedOut {
		return u, errStillChecking
	}
	return u, err
}

// bounded runs fn in the background and waits for it at most
// ResolveTimeout (on the bot's clock). When the time runs out first it
// reports timedOut; fn goes on (bounded by DefaultWorkTimeout), so a slow
// IdP refresh still completes for the next click.
func bounded[T any](b *Bot, fn func(ctx context.Context) (T, error)) (v T, timedOut bool, err error) {
	type result struct {
		v   T
		err error
	}
	// Start the timer before the work, so a test that waits for the work
	// to begin knows the timer is running.
	timer := b.clock.After(b.opts.ResolveTimeout)
	ch := make(chan result, 1)
	if !b.spawn(func(ctx context.Context) {
		v, err := fn(ctx)
		ch <- result{v, err}
	}) {
		return v, false, errShuttingDown
	}
	select {
	case r := <-ch:
		return r.v, false, r.err
	case <-timer:
		return v, true, nil
	}
}

// countedText confirms a counted vote and what it did.
func countedText(o chatflow.Outcome, d approvals.Decision) string {
	return cards.CountedLine(o.Request, o.Approvals, d, o.Request.Action+" ("+o.Request.ID+")", statusMarkup)
}

// Invoke de-duplication.
const (
	// invokeRemember is how long an invoke's answer is kept for repeats.
	invokeRemember = 10 * time.Minute
	// maxInvokeEntries bounds the cache; only verified activities enter.
	maxInvokeEntries = 10_000
)

// invokeCache remembers, per activity id, the answer given to an invoke,
// so a repeated delivery of the same click gets the same answer and is
// not acted on again.
type invokeCache struct {
	mu sync.Mutex
	m  map[string]*invokeEntry
}

type invokeEntry struct {
	done  chan struct{}
	once  sync.Once
	body  []byte
	until time.Time
}

func newInvokeCache() *invokeCache { return &invokeCache{m: map[string]*invokeEntry{}} }

// begin returns the entry for key and whether this is its first delivery.
// An empty key is never a repeat.
func (c *invokeCache) begin(key string, now time.Time) (*invokeEntry, bool) {
	fresh := &invokeEntry{done: make(chan struct{}), until: now.Add(invokeRemember)}
	if key == "" {
		return fresh, true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && now.Before(e.until) {
		return e, false
	}
	if len(c.m) >= maxInvokeEntries/2 {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxInvokeEntries {
			clear(c.m)
		}
	}
	c.m[key] = fresh
	return fresh, true
}

// finish records the answer and releases repeats waiting for it.
func (e *invokeEntry) finish(body []byte) {
	e.once.Do(func() {
		e.body = body
		close(e.done)
	})
}

func writeInvoke(w http.ResponseWriter, resp invokeResponse) {
	body, err := json.Marshal(resp)
	if err != nil {
		body = []byte(`{"statusCode":500,"type":"application/vnd.microsoft.error","value":{"code":"InternalError","message":"could not encode the answer"}}`)
	}
	writeInvokeBody(w, body)
}

func writeInvokeBody(w http.ResponseWriter, body []byte) {
	if body == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, bytes.NewReader(body))
}
