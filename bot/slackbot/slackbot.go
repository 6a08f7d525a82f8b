// Package slackbot is signoff's Slack adapter. It renders approval requests
// as Block Kit cards (posting them from the approvals outbox and updating
// them on every state change), verifies Slack's signed callbacks
// (interactions and the /signoff slash command, over HTTP or Socket Mode)
// and turns a verified click by a linked approver into an approvals vote.
//
// What it checks, in order, before anything reaches approvals:
//   - the v0 signature (HMAC-SHA256 of "v0:{timestamp}:{raw body}" with the
//     signing secret) and a timestamp within five minutes of the bot's
//     clock; else 401 and a callback.rejected audit record;
//   - the payload's team (and enterprise, when configured) against the
//     configuration; else 403 and a callback.rejected audit record;
//   - the clicking Slack account's own team (user.team_id; for a slash
//     command, users.info) against the configured workspace or org: an
//     account of another organisation (Slack Connect) gets a private
//     refusal without a sign-in link and a callback.rejected record
//     (reason foreign_user);
//   - the clicking Slack account's link to an IdP identity (through an
//     IdentityResolver); else a private message with a sign-in link and a
//     vote.rejected audit record.
//
// Between the tenant check and the rest, every click, dialog submission
// and slash command (but help) counts against the account's limit
// (Options.Clicks); one over it gets a private message saying when to try
// again, and nothing else happens.
//
// Who may approve is never decided here: approvals.Service.Vote does.
package slackbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/ackwork"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/platform"
)

// Platform is the name this adapter uses for itself in votes, links, cards
// and audit records.
const Platform = platform.Slack

// Paths the Slack app's manifest points at.
const (
	InteractionsPath = "/slack/interactions"
	CommandsPath     = "/slack/commands"
)

// Block Kit action ids of the card's buttons and the callback id of the
// reason dialog.
const (
	ActionApprove    = "signoff_approve"
	ActionDeny       = "signoff_deny"
	ReasonCallbackID = "signoff_reason"
)

// reasonBlockID is the block and action id of the reason dialog's text
// input: where its value is read, and where a refusal shown on the
// dialog appears.
const reasonBlockID = "reason"

// Defaults for Options.
const (
	// DefaultMaxBodyBytes caps a callback body. Slack's interaction
	// payloads carry the whole message they came from; 1 MiB leaves room.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultCallTimeout bounds one Slack Web API call.
	DefaultCallTimeout = 15 * time.Second
	// DefaultWorkTimeout bounds the work done after acknowledging one
	// callback (identity check, vote, replies).
	DefaultWorkTimeout = time.Minute
	// SignatureWindow is how far a callback's timestamp may be from the
	// bot's clock.
	SignatureWindow = 5 * time.Minute
)

// IdentityResolver maps a Slack account to the IdP identity a vote from it
// counts under. *linkflow.Linker implements it.
type IdentityResolver = chatflow.AccountResolver

// Options configure a Bot. Service, Resolver, BotToken and TeamID (or
// EnterpriseID) are required, and SigningSecret unless AppToken is set
// (Socket Mode only).
type Options struct {
	// Service runs the request lifecycle: votes, the outbox, audit records.
	Service *approvals.Service
	// Resolver maps a Slack account to its linked IdP identity
	// (*linkflow.Linker in production).
	Resolver IdentityResolver
	// BotToken (xoxb-…) calls the Web API. It is never logged.
	BotToken string
	// SigningSecret verifies HTTP callbacks. Without it every HTTP
	// callback is refused (401).
	SigningSecret string
	// AppToken (xapp-…) enables RunSocketMode.
	AppToken string
	// TeamID is the workspace (T…) whose callbacks are accepted.
	TeamID string
	// EnterpriseID, when set, must also match a callback's enterprise.
	EnterpriseID string
	// APIURL overrides the Web API base URL (slack.OptionAPIURL; tests
	// point it at slacktest). It ends with "/".
	APIURL string
	// PublicURL is signoff's external base URL, for "full request" links.
	PublicURL string
	// RequestURL, when set, returns where a person can read a request in
	// full (used in truncation markers); default PublicURL +
	// "/v1/requests/{id}".
	RequestURL func(id string) string
	// Clock drives timestamps, the signature window and outbox backoff;
	// default the wall clock.
	Clock clock.Clock
	// Logger receives operational logs, never tokens or callback bodies;
	// default slog.Default().
	Logger *slog.Logger
	// HTTPClient calls the Web API; default a client with a
	// DefaultCallTimeout timeout.
	HTTPClient *http.Client
	// MaxBodyBytes caps a callback body; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// PollInterval is how often RunOutbox looks for work when idle;
	// default one second.
	PollInterval time.Duration
	// Clicks limits the clicks, dialog submissions and slash commands of
	// each Slack account (limits.clicks_per_minute); over it the person
	// is told privately when to try again and nothing is acted on. nil:
	// no limit.
	Clicks *chatlimit.Limiter
}

// Bot is the Slack adapter. It is safe for concurrent use. Create it with
// New, mount its callbacks with Register, run RunOutbox (and RunSocketMode
// when an app token is configured), and call Shutdown when stopping.
type Bot struct {
	opts  Options
	svc   *approvals.Service
	res   IdentityResolver
	api   *slack.Client
	clock clock.Clock
	log   *slog.Logger

	// work is what runs after a callback was acknowledged; it ends with
	// Shutdown.
	work *ackwork.Group

	replays *replayCache
	// out delivers the cards from the outbox.
	out *cards.Deliverer

	// responseURLAllowed vets a slash command's response_url before the
	// fallback reply is posted to it (tests widen it to loopback).
	responseURLAllowed func(string) bool
	// hooks posts replies to response_urls: Options.HTTPClient that
	// follows no redirect, so a reply (a sign-in link among them) never
	// leaves the host responseURLAllowed vetted.
	hooks *http.Client

	// token is what CheckToken learned about the bot token (nil before).
	token atomic.Pointer[tokenInfo]
	// members caches which accounts belong to signoff's organisation, for
	// the slash command check.
	members memberCache
	// socket is the state of the Socket Mode connection (socketstate.go).
	socket socketState
}

// New checks opts and returns a Bot. It does no network I/O.
func New(opts Options) (*Bot, error) {
	var problems []string
	if opts.Service == nil {
		problems = append(problems, "an approvals service is required")
	}
	if opts.Resolver == nil {
		problems = append(problems, "an identity resolver (the account-link flow) is required: configure idp")
	}
	if opts.BotToken == "" {
		problems = append(problems, "slack.bot_token is required (the xoxb-… token from the app's OAuth & Permissions page)")
	}
	if opts.SigningSecret == "" && opts.AppToken == "" {
		problems = append(problems, "slack.signing_secret is required to verify callbacks (or set slack.app_token to use Socket Mode)")
	}
	if opts.TeamID == "" && opts.EnterpriseID == "" {
		problems = append(problems, "slack.team_id is required: the workspace (T…) whose callbacks are accepted")
	}
	if opts.APIURL != "" && !strings.HasSuffix(opts.APIURL, "/") {
		problems = append(problems, fmt.Sprintf("slack.api_url %q must end with /", opts.APIURL))
	}
	if opts.PublicURL != "" {
		if u, err := url.Parse(opts.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			problems = append(problems, fmt.Sprintf("public_url %q must be an absolute http(s) URL", opts.PublicURL))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("slackbot: %s", strings.Join(problems, "; "))
	}
	cards.Defaults{
		Clock: &opts.Clock, Logger: &opts.Logger, HTTPClient: &opts.HTTPClient, MaxBodyBytes: &opts.MaxBodyBytes,
		PollInterval: &opts.PollInterval, RequestURL: &opts.RequestURL,
		CallTimeout: DefaultCallTimeout, MaxBody: DefaultMaxBodyBytes, PublicURL: opts.PublicURL,
	}.Apply()
	apiOpts := []slack.Option{slack.OptionHTTPClient(opts.HTTPClient)}
	if opts.APIURL != "" {
		apiOpts = append(apiOpts, slack.OptionAPIURL(opts.APIURL))
	}
	if opts.AppToken != "" {
		apiOpts = append(apiOpts, slack.OptionAppLevelToken(opts.AppToken))
	}
	b := &Bot{
		opts:               opts,
		svc:                opts.Service,
		res:                opts.Resolver,
		api:                slack.New(opts.BotToken, apiOpts...),
		clock:              opts.Clock,
		log:                opts.Logger.With("component", "slackbot"),
		replays:            newReplayCache(),
		responseURLAllowed: isSlackResponseURL,
	}
	hooks := *opts.HTTPClient
	hooks.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b.hooks = &hooks
	b.out = newDeliverer(b)
	b.work = ackwork.New("slack callback", DefaultWorkTimeout, b.log)
	return b, nil
}

// Register mounts POST /slack/interactions and POST /slack/commands.
func (b *Bot) Register(mux chatflow.Mux) {
	mux.Handle("POST "+InteractionsPath, http.HandlerFunc(b.handleInteractions))
	mux.Handle("POST "+CommandsPath, http.HandlerFunc(b.handleCommands))
}

// Shutdown stops taking new callback work and waits until the work already
// acknowledged (votes, replies) has finished or ctx ends; then it cancels
// what is left. Callbacks arriving afterwards are acknowledged but not
// acted on (Slack shows the clicker an error and they click again).
func (b *Bot) Shutdown(ctx context.Context) error {
	if err := b.work.Shutdown(ctx); err != nil {
		return fmt.Errorf("slackbot: %w", err)
	}
	return nil
}

// spawn runs fn after the callback has been acknowledged, bound to the
// bot's lifetime and DefaultWorkTimeout. It reports false when the bot is
// shutting down.
func (b *Bot) spawn(fn func(ctx context.Context)) bool { return b.work.Spawn(fn) }

// flow is the path a verified click takes to its outcome (bot/chatflow),
// with the bot's current resolver.
func (b *Bot) flow() *chatflow.Flow {
	return chatflow.New(chatflow.Options{
		Service: b.svc, Resolver: b.res, Logger: b.log,
		// A Slack vote cannot carry a reason through a step-up sign-in;
		// a reason is asked for in a dialog of its own.
		StepUpFirst: true, ReasonDialog: true,
	})
}

// Reasons a callback from a workspace or enterprise signoff does not
// serve is refused (tenantProblem), as written to callback.rejected
// records.
const (
	rejectWrongWorkspace  chatflow.RejectReason = "wrong_workspace"
	rejectWrongEnterprise chatflow.RejectReason = "wrong_enterprise"
)

// tenantProblem says why a callback's team or enterprise is not the
// configured one, as a callback.rejected reason, or "" when it matches.
func (b *Bot) tenantProblem(teamID, enterpriseID string) chatflow.RejectReason {
	if b.opts.TeamID != "" && teamID != b.opts.TeamID {
		return rejectWrongWorkspace
	}
	if b.opts.EnterpriseID != "" && enterpriseID != b.opts.EnterpriseID {
		return rejectWrongEnterprise
	}
	return ""
}

// rejectCallback writes the callback.rejected audit record; failures are
// logged, not returned: the caller refuses the callback either way.
func (b *Bot) rejectCallback(ctx context.Context, workspace string, reason chatflow.RejectReason, source string) {
	if err := b.svc.RecordRejectedCallback(context.WithoutCancel(ctx), Platform, workspace, string(reason), source); err != nil {
		b.log.Error("could not audit a rejected callback", "reason", reason, "err", err)
	}
}

// isSlackResponseURL accepts only Slack's own response_url host, so a
// reply is never sent elsewhere.
func isSlackResponseURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https" && u.Host == "hooks.slack.com"
}

// errorCode returns the Slack error code of err ("channel_not_found"), or
// "".
func errorCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}
