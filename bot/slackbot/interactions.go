package slackbot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/internal/text"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// maxRequestIDLen bounds the request id a button may carry.
const maxRequestIDLen = 200

// maxUserIDLen bounds the clicker's user id (Slack's are about a dozen
// characters) and maxCallbackIDLen the trigger id kept as a vote's source.
// Both go into audit records, and unbounded ones could make a record
// longer than audit.MaxLineBytes, which no verifier accepts.
const (
	maxUserIDLen     = 128
	maxCallbackIDLen = 200
)

// usableUserID reports whether id can name the clicker in a vote.
func usableUserID(id string) bool {
	return id != "" && len(id) <= maxUserIDLen && utf8.ValidString(id)
}

// handleInteractions serves POST /slack/interactions: button clicks
// (block_actions) and the reason dialog's submission (view_submission).
// It verifies before it parses, answers within Slack's three seconds, and
// does the rest after the answer.
func (b *Bot) handleInteractions(w http.ResponseWriter, r *http.Request) {
	const source = "POST " + InteractionsPath
	body, ok := b.verifiedBody(w, r, source)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	payload := form.Get("payload")
	if err != nil || payload == "" {
		chatflow.WriteError(w, http.StatusBadRequest, "bad_payload", "the body has no payload form field")
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(payload), &cb); err != nil {
		chatflow.WriteError(w, http.StatusBadRequest, "bad_payload", "the payload is not an interaction JSON object")
		return
	}
	if !b.admit(w, r, cb.Team.ID, cb.Enterprise.ID, source) {
		return
	}
	if resp := b.acceptInteraction(cb, source); resp != nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(mustJSON(resp))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// verifiedBody reads the body and checks its signature. It answers the
// request itself when it returns false.
func (b *Bot) verifiedBody(w http.ResponseWriter, r *http.Request, source string) ([]byte, bool) {
	body, err := readBody(w, r, b.opts.MaxBodyBytes)
	if err == nil {
		err = verifySignature(r.Header, body, b.opts.SigningSecret, b.clock.Now())
	}
	if err != nil {
		reason := chatflow.RejectBadSignature
		var se *signatureError
		if errors.As(err, &se) {
			reason = se.Reason
		}
		b.rejectCallback(r.Context(), "", reason, source)
		// Anyone can send these without a credential: the sampled
		// "callback rejected" line (approvals) tells operators, this one
		// with its detail only at debug, so a flood cannot fill the log.
		b.log.Debug("slack callback refused", "path", r.URL.Path, "reason", reason, "err", err)
		status := http.StatusUnauthorized
		switch reason {
		case chatflow.RejectBodyTooLarge:
			status = http.StatusRequestEntityTooLarge
		case chatflow.RejectUnreadableBody:
			status = http.StatusBadRequest
		}
		chatflow.WriteError(w, status, string(reason), "the request could not be verified as coming from Slack")
		return nil, false
	}
	return body, true
}

// admit checks a verified callback's workspace and enterprise (teamID,
// enterpriseID) and that it is seen for the first time. It answers the
// request itself when it returns false: a workspace or enterprise signoff
// does not serve is refused (403) and audited; a replay is acknowledged
// and not acted on again.
func (b *Bot) admit(w http.ResponseWriter, r *http.Request, teamID, enterpriseID, source string) bool {
	if why := b.tenantProblem(teamID, enterpriseID); why != "" {
		b.rejectCallback(r.Context(), teamID, why, source)
		chatflow.WriteError(w, http.StatusForbidden, string(why), "this signoff does not serve that Slack workspace")
		return false
	}
	if b.replays.replayed(r.Header.Get(headerSignature), b.clock.Now()) {
		b.log.Info("slack callback replayed; ignoring it", "path", r.URL.Path)
		w.WriteHeader(http.StatusOK)
		return false
	}
	return true
}

// acceptInteraction starts the work an interaction asks for. It never
// blocks on Slack, the IdP or the store. A click or dialog submission by
// an account of another organisation is refused instead (refuseForeign);
// source names the transport in that audit record.
//
// It returns what the acknowledgement carries: nil, or, for a reason
// dialog submitted over the account's click limit, the refusal shown on
// the dialog's reason field. The dialog then stays open with the reason
// typed in, and the person is told at no cost to the workspace's rate
// limits (an empty acknowledgement would close it as if the vote were
// taken).
func (b *Bot) acceptInteraction(cb slack.InteractionCallback, source string) *slack.ViewSubmissionResponse {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		for _, a := range cb.ActionCallback.BlockActions {
			if a == nil {
				continue
			}
			var d approvals.Decision
			switch a.ActionID {
			case ActionApprove:
				d = approvals.DecisionApprove
			case ActionDeny:
				d = approvals.DecisionDeny
			default:
				continue
			}
			if b.overLimit(click{team: cb.Team.ID, user: cb.User.ID, channel: cmp.Or(cb.Channel.ID, cb.Container.ChannelID), responseURL: cb.ResponseURL}) {
				return nil
			}
			if !b.memberTeam(cb.User.TeamID) {
				b.refuseForeignInteraction(cb, cmp.Or(cb.Channel.ID, cb.Container.ChannelID), source)
				return nil
			}
			action := *a
			if !b.spawn(func(ctx context.Context) { b.handleClick(ctx, cb, action, d) }) {
				b.log.Warn("slack click arrived during shutdown; not acted on", "user", cb.User.ID)
			}
			return nil // one vote per callback
		}
	case slack.InteractionTypeViewSubmission:
		if cb.View.CallbackID != ReasonCallbackID {
			return nil
		}
		if msg := b.opts.Clicks.Allow(Platform, cb.Team.ID, cb.User.ID); msg != "" {
			b.log.Debug("slack dialog submission over the per-account limit; not acted on", "user", cb.User.ID, "team", cb.Team.ID)
			return slack.NewErrorsViewSubmissionResponse(map[string]string{reasonBlockID: "⏳ " + msg})
		}
		var meta reasonMetadata
		_ = json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta)
		if !b.memberTeam(cb.User.TeamID) {
			b.refuseForeignInteraction(cb, meta.Channel, source)
			return nil
		}
		if !b.spawn(func(ctx context.Context) { b.handleReasonSubmission(ctx, cb) }) {
			b.log.Warn("slack dialog submission arrived during shutdown; not acted on", "user", cb.User.ID)
		}
	}
	return nil
}

// overLimit counts a click of c's account against Options.Clicks. Over
// the limit it tells the person privately (after the acknowledgement,
// once a minute) when to try again and reports true: the caller then does
// nothing else, so nothing reaches approvals.
func (b *Bot) overLimit(c click) bool {
	msg := b.opts.Clicks.Allow(Platform, c.team, c.user)
	if msg == "" {
		return false
	}
	b.log.Debug("slack click or command over the per-account limit; not acted on", "user", c.user, "team", c.team)
	// The reply is a chat.postEphemeral: once a minute per account, so a
	// flood spends nothing of the workspace's limit that others' replies
	// (sign-in links, refusals) need.
	if b.opts.Clicks.Tell(Platform, c.team, c.user) {
		b.spawn(func(ctx context.Context) { b.reply(ctx, c, ":hourglass: "+escapeText(msg)) })
	}
	return true
}

// refuseForeignInteraction refuses an interaction by an account of another
// organisation: it is audited at once, and the person told privately (in
// channel, or through the response_url) after the acknowledgement.
func (b *Bot) refuseForeignInteraction(cb slack.InteractionCallback, channel, source string) {
	c := click{team: cb.Team.ID, user: cb.User.ID, channel: channel, responseURL: cb.ResponseURL}
	if !b.spawn(func(ctx context.Context) { b.refuseForeign(ctx, c, cb.User.TeamID, source) }) {
		b.rejectCallback(b.work.Context(), c.team, rejectForeignUser, source)
	}
}

// click is one vote attempt from Slack, however it arrived.
type click struct {
	team, user  string
	channel     string
	responseURL string
	callbackID  string
	requestID   string
	decision    approvals.Decision
	reason      string
}

func (c click) platformUser() linkflow.PlatformUser {
	return linkflow.PlatformUser{Platform: Platform, Workspace: c.team, UserID: c.user, Conversation: c.channel}
}

func (c click) source() approvals.Source {
	callbackID := strings.ToValidUTF8(c.callbackID, "\uFFFD")
	callbackID = text.Cut(callbackID, maxCallbackIDLen)
	return approvals.Source{Platform: Platform, Workspace: c.team, PlatformUser: c.user, CallbackID: callbackID}
}

// flowClick is c as the click flow takes it.
func (c click) flowClick() chatflow.Click {
	return chatflow.Click{Account: c.platformUser(), Source: c.source(), RequestID: c.requestID, Decision: c.decision, Reason: c.reason}
}

// handleClick handles an Approve or Deny button: the click flow opens the
// reason dialog when the action wants a reason, sends a step-up sign-in
// link when it wants a fresh sign-in, and otherwise casts the vote.
func (b *Bot) handleClick(ctx context.Context, cb slack.InteractionCallback, a slack.BlockAction, d approvals.Decision) {
	c := click{
		team: cb.Team.ID, user: cb.User.ID, channel: cb.Channel.ID, responseURL: cb.ResponseURL,
		callbackID: cb.TriggerID, requestID: strings.TrimSpace(a.Value), decision: d,
	}
	if c.channel == "" {
		c.channel = cb.Container.ChannelID
	}
	if c.callbackID == "" {
		c.callbackID = a.ActionTs
	}
	if c.requestID == "" || len(c.requestID) > maxRequestIDLen || !usableUserID(c.user) {
		b.log.Warn("slack click without a usable request id or user; ignoring it")
		return
	}
	b.answer(ctx, c, cb.TriggerID, b.flow().Click(ctx, c.flowClick()))
}

// openReasonDialog opens the dialog that asks for the vote's reason; the
// vote is cast when the signed view_submission arrives.
func (b *Bot) openReasonDialog(ctx context.Context, c click, triggerID string, req approvals.Request) {
	view, err := renderReasonModal(req, c.decision, c.channel, b.opts.RequestURL(req.ID))
	if err == nil {
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
		_, err = b.api.OpenViewContext(callCtx, triggerID, view)
	}
	if err != nil {
		b.log.Warn("could not open the reason dialog", "request", req.ID, "user", c.user, "err", err)
		b.reply(ctx, c, ":warning: Could not open the dialog that asks for your reason (Slack allows three seconds for it). Nothing was counted; click again.")
	}
}

// handleReasonSubmission casts the vote the reason dialog completes.
func (b *Bot) handleReasonSubmission(ctx context.Context, cb slack.InteractionCallback) {
	var meta reasonMetadata
	if err := json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta); err != nil {
		b.log.Warn("reason dialog with unreadable metadata; ignoring it", "user", cb.User.ID)
		return
	}
	c := click{
		team: cb.Team.ID, user: cb.User.ID, channel: meta.Channel, callbackID: cb.TriggerID,
		requestID: meta.RequestID, decision: approvals.Decision(meta.Decision),
	}
	if c.callbackID == "" {
		c.callbackID = "view:" + cb.View.ID
	}
	if c.requestID == "" || len(c.requestID) > maxRequestIDLen || !usableUserID(c.user) ||
		(c.decision != approvals.DecisionApprove && c.decision != approvals.DecisionDeny) {
		b.log.Warn("reason dialog without a usable request, decision or user; ignoring it")
		return
	}
	if cb.View.State != nil {
		c.reason = strings.TrimSpace(cb.View.State.Values[reasonBlockID][reasonBlockID].Value)
	}
	if !utf8.ValidString(c.reason) {
		c.reason = strings.ToValidUTF8(c.reason, "\uFFFD")
	}
	c.reason = text.CutRunes(c.reason, maxReasonInput)
	if c.reason == "" {
		b.reply(ctx, c, ":warning: A reason is required. Nothing was counted; click again and fill in the reason.")
		return
	}
	b.answer(ctx, c, cb.TriggerID, b.flow().Cast(ctx, c.flowClick()))
}

// answer tells the clicker privately what their click did, or opens the
// reason dialog (with triggerID) when the click flow asks for a reason.
func (b *Bot) answer(ctx context.Context, c click, triggerID string, o chatflow.Outcome) {
	switch o.Kind {
	case chatflow.Counted:
		b.reply(ctx, c, countedText(o, c.decision))
	case chatflow.Duplicate:
		b.reply(ctx, c, fmt.Sprintf("You already voted %s on this request; it counts once.", c.decision))
	case chatflow.Refused:
		b.reply(ctx, c, ":no_entry_sign: Not counted: "+escapeText(o.Refusal.Message))
	case chatflow.SignInNeeded:
		b.reply(ctx, c, linkText(o.Message, o.SignInURL)+" Nothing was counted this time.")
	case chatflow.StepUpNeeded:
		b.reply(ctx, c, fmt.Sprintf(":closed_lock_with_key: This action needs a fresh sign-in before your %s counts. <%s|Sign in to %s> (the link works once and expires in a few minutes); your vote is recorded when the sign-in completes.",
			c.decision, escapeURL(o.SignInURL), c.decision))
	case chatflow.ReasonNeeded:
		b.openReasonDialog(ctx, c, triggerID, o.Request)
	case chatflow.StepUpAndReason:
		b.reply(ctx, c, ":warning: Action *"+escapeText(o.Action.Name)+"* needs both a reason and a fresh sign-in to "+string(c.decision)+
			", which a Slack vote cannot carry together yet. Nothing was counted; ask an operator to record this decision another way.")
	case chatflow.IdentityUnavailable:
		b.log.Warn("could not resolve a slack account's identity", "user", c.user, "team", c.team, "err", o.Err)
		b.reply(ctx, c, ":warning: Your identity could not be confirmed with the identity provider right now, so nothing was counted. Try again in a minute.")
	case chatflow.Failed:
		b.log.Error("recording a slack vote failed", "request", c.requestID, "user", c.user, "err", o.Err)
		b.reply(ctx, c, ":warning: Your vote could not be recorded because of an internal error; nothing was counted. Try again in a minute.")
	}
}

// linkText is the private message with a sign-in link.
func linkText(message, u string) string {
	msg := ":link: " + escapeText(message)
	if u != "" {
		msg += " <" + escapeURL(u) + "|Sign in to link your account> (the link works once and expires in a few minutes)."
	}
	return msg
}

// countedText confirms a counted vote and what it did.
func countedText(o chatflow.Outcome, d approvals.Decision) string {
	what := "*" + escapeText(o.Request.Action) + "* (`" + escapeText(o.Request.ID) + "`)"
	return cards.CountedLine(o.Request, o.Approvals, d, what, statusMarkup)
}

// reply sends text privately to the clicker: an ephemeral message in the
// channel, or, where the app cannot post (a DM, a channel it is not in),
// through the callback's response_url.
func (b *Bot) reply(ctx context.Context, c click, text string) {
	if c.channel != "" {
		err := b.postEphemeral(ctx, c.channel, c.user, text)
		if err == nil {
			return
		}
		b.log.Warn("could not send a private slack reply", "user", c.user, "channel", c.channel, "err", err)
	}
	if c.responseURL != "" && b.responseURLAllowed(c.responseURL) {
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
		err := slack.PostWebhookCustomHTTPContext(callCtx, c.responseURL, b.hooks, &slack.WebhookMessage{
			ResponseType: slack.ResponseTypeEphemeral, Text: text,
		})
		if err != nil {
			b.log.Warn("could not reply through the response_url", "user", c.user, "err", err)
		}
	}
}

// minRateLimitWait is waited on rate_limited without a usable Retry-After.
const minRateLimitWait = time.Second

// postEphemeral calls chat.postEphemeral, waiting out one short rate
// limit.
func (b *Bot) postEphemeral(ctx context.Context, channel, user, text string) error {
	for attempt := 0; ; attempt++ {
		callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		_, err := b.api.PostEphemeralContext(callCtx, channel, user,
			slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
		cancel()
		var rl *slack.RateLimitedError
		if err == nil || attempt > 0 || !errors.As(err, &rl) || rl.RetryAfter > 10*time.Second {
			if err != nil {
				return fmt.Errorf("chat.postEphemeral: %w", err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chat.postEphemeral: %w", ctx.Err())
		case <-b.clock.After(max(rl.RetryAfter, minRateLimitWait)):
		}
	}
}
