// Package teamsbot is signoff's Microsoft Teams adapter. It renders approval
// requests as Adaptive Cards (posting them from the approvals outbox and
// updating them on every state change), verifies the activities the Bot
// Connector sends to POST /teams/messages, and turns a verified click by a
// linked approver into an approvals vote. It also tells the account-link
// flow who owns a Teams account (LookupAccount, the Bot Connector's member
// lookup, for linkflow.AccountDirectory) and posts the messages the flow sends
// to an account (Notify, from "notice.teams" outbox entries).
//
// What it checks, in order, before anything reaches approvals:
//   - the Bot Framework JWT in the Authorization header: its signature
//     against keys from the configured OpenID metadata (teams.
//     openid_metadata_url), issuer https://api.botframework.com, audience
//     the bot's app id, expiry within a bounded clock skew; then, once the
//     body is read, that the token's serviceurl claim equals the activity's
//     serviceUrl and, when the signing key lists endorsements, that they
//     include the activity's channelId; else 401 and a callback.rejected
//     audit record;
//   - the serviceUrl's host against teams.service_url_hosts (the bot
//     sends its own token there when it answers); else 401 and a
//     callback.rejected audit record (reason service_url_not_allowed).
//     The same list is checked again before every Bot Connector call, so
//     neither a stored conversation reference nor teams.service_url can
//     send the token to another host;
//   - the activity's tenant (channelData.tenant.id) against teams.
//     tenant_ids; else 403 and a callback.rejected audit record;
//   - the clicking account's link (tenant + aadObjectId) to an IdP identity
//     (through an IdentityResolver); else the invoke response carries a
//     sign-in link and a vote.rejected audit record is written.
//
// A click (an invoke, or an older client's Action.Submit message) that
// passed these checks counts against its account's limit (Options.Clicks)
// before anything else; over it, the answer says when to try again and
// nothing reaches approvals.
//
// Who may approve is never decided here: approvals.Service.Vote does.
//
// # What comes from msbotbuilder-go and what is written here
//
// The activity schema (schema.Activity, schema.Attachment,
// schema.ConversationAccount, schema.ResourceResponse, schema.ErrorResponse)
// comes from github.com/infracloudio/msbotbuilder-go v0.2.5. Its other parts
// are not used, and this package has its own code instead:
//   - connector/auth (inbound validation) hard-codes Microsoft's metadata
//     URL, fetches the metadata on every validation, ignores key
//     endorsements and has paths that return neither an identity nor an
//     error. verify.go verifies tokens with go-oidc over a key set of its
//     own (cached, refreshed on an unknown kid at a bounded rate, with the
//     endorsements of each key).
//   - connector/client discards the connector's answer (the new activity's
//     id, which every later update needs), takes no context, uses an HTTP
//     client without a timeout and hides the status code and Retry-After.
//     connector.go calls the Bot Connector REST API itself, with the bot's
//     token from golang.org/x/oauth2/clientcredentials.
//   - schema.Activity marshals its zero time.Time fields (an "expiration"
//     in year 1) and empty structs, so outgoing activities use a small type
//     of their own; incoming ones are decoded into schema.Activity with the
//     loosely typed fields (timestamps, value, channelData) shadowed.
//   - The library has no Adaptive Card types; card.go builds the card.
package teamsbot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/ackwork"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/platform"
)

// Platform is the name this adapter uses for itself in votes, links, cards,
// conversations and audit records.
const Platform = platform.Teams

// MessagesPath is the bot's messaging endpoint, registered with the Azure
// Bot resource as public_url + MessagesPath.
const MessagesPath = "/teams/messages"

// The Action.Execute verbs of the card's buttons.
const (
	VerbApprove = "approve"
	VerbDeny    = "deny"
)

// Bot Framework endpoints of Microsoft's public cloud: the defaults of
// Options.OpenIDMetadataURL and Options.TokenURL, the issuer of the tokens
// the Bot Connector sends, and the scope of the bot's own tokens.
const (
	DefaultOpenIDMetadataURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	DefaultTokenURL          = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
	PublicIssuer             = "https://api.botframework.com"
	PublicScope              = "https://api.botframework.com/.default"
)

// The US Government cloud (teams.channel_service =
// https://botframework.azure.us), as Microsoft's Bot Framework SDKs define
// it.
const (
	GovChannelService    = "https://botframework.azure.us"
	GovOpenIDMetadataURL = "https://login.botframework.azure.us/v1/.well-known/openidconfiguration"
	GovTokenURL          = "https://login.microsoftonline.us/MicrosoftServices.onmicrosoft.com/oauth2/v2.0/token"
	GovIssuer            = "https://api.botframework.us"
	GovScope             = "https://api.botframework.us/.default"
)

// DefaultServiceURLHosts is the default of Options.ServiceURLHosts (and of
// teams.service_url_hosts): the Bot Connector service hosts of Microsoft's
// public cloud (smba.trafficmanager.net, smba.onyx.prod.teams.
// trafficmanager.net, and GCC's smba.infra.gcc.teams.microsoft.com) and of
// the US Government clouds (GCC High's smba.infra.gov.teams.microsoft.us,
// DoD's smba.infra.dod.teams.microsoft.us), as Microsoft's Teams SDK lists
// them ("Service URL Validation",
// https://microsoft.github.io/teams-sdk/csharp/essentials/app-configuration/service-url-validation).
// Other sovereign clouds (21Vianet, Bleu, …) are not included: list their
// hosts in teams.service_url_hosts.
var DefaultServiceURLHosts = []string{
	"smba.trafficmanager.net",
	"smba.onyx.prod.teams.trafficmanager.net",
	"smba.infra.gcc.teams.microsoft.com",
	"smba.infra.gov.teams.microsoft.us",
	"smba.infra.dod.teams.microsoft.us",
}

// Defaults for Options.
const (
	// DefaultMaxBodyBytes caps an activity body. Activities are small; an
	// invoke from a card carries the card's data, not the card.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultCallTimeout bounds one Bot Connector or token endpoint call.
	DefaultCallTimeout = 15 * time.Second
	// DefaultWorkTimeout bounds the work done after answering one activity
	// (audit records, replies, conversation references).
	DefaultWorkTimeout = time.Minute
	// DefaultResolveTimeout bounds how long an invoke waits for the
	// approver's identity (which may need a refresh at the IdP) before it
	// answers "checking your identity, click again". Teams gives an invoke
	// five seconds.
	DefaultResolveTimeout = 3 * time.Second
	// DefaultMaxSkew is the clock skew tolerated on a Bot Framework token's
	// exp and nbf; Microsoft's token validation guidance allows five
	// minutes.
	DefaultMaxSkew = 5 * time.Minute
	// MaxSkewLimit is the largest MaxSkew New accepts.
	MaxSkewLimit = 5 * time.Minute
)

// IdentityResolver maps a Teams account (tenant id + aadObjectId) to the IdP
// identity a vote from it counts under. *linkflow.Linker implements it.
type IdentityResolver = chatflow.AccountResolver

// Options configure a Bot. Service, Resolver, AppID, AppPassword and
// TenantIDs are required.
type Options struct {
	// Service runs the lifecycle and keeps the conversation references
	// (the service URL of each conversation, learned from activities).
	Service  *approvals.Service
	Resolver IdentityResolver
	// AppID is the bot's Microsoft app id: the audience of the Bot
	// Connector's tokens and the client id of the bot's own.
	AppID string
	// AppPassword is the app's client secret. It is never logged.
	AppPassword string
	// TenantIDs are the Microsoft Entra tenants whose activities are
	// accepted (compared without regard to case).
	TenantIDs []string
	// OpenIDMetadataURL is where the Bot Connector's signing keys are
	// found; default DefaultOpenIDMetadataURL (or the channel service's).
	OpenIDMetadataURL string
	// TokenURL is where the bot gets its own access tokens; default
	// DefaultTokenURL (or the channel service's).
	TokenURL string
	// ServiceURL is used for conversations the bot has not seen an
	// activity from yet (e.g. https://smba.trafficmanager.net/teams/).
	ServiceURL string
	// ServiceURLHosts are the hosts a serviceUrl may name: an activity
	// whose serviceUrl names another host is refused (401, audited as
	// callback.rejected "service_url_not_allowed") before anything is
	// stored, and the bot never calls the Bot Connector, with its token,
	// at a host not listed (a stored conversation reference or
	// teams.service_url included). An entry is a host matched exactly, or
	// "*." and a domain matching the hosts below it (package
	// internal/hostlist). Default DefaultServiceURLHosts; a list given
	// replaces it.
	ServiceURLHosts []string
	// ChannelService selects a sovereign cloud: "" for Microsoft's public
	// cloud or GovChannelService. It sets the default metadata and token
	// URLs, the expected token issuer and the bot's token scope.
	ChannelService string
	// PublicURL is signoff's external base URL, for "full request" links.
	PublicURL string
	// RequestURL, when set, returns where a person can read a request in
	// full; default PublicURL + "/v1/requests/{id}".
	RequestURL func(id string) string
	// Clock drives token times, timeouts and outbox backoff; default the
	// wall clock.
	Clock clock.Clock
	// Logger receives operational logs, never tokens, secrets or activity
	// bodies; default slog.Default().
	Logger *slog.Logger
	// HTTPClient calls the Bot Connector, the token endpoint and the
	// OpenID metadata; default a client with a DefaultCallTimeout timeout.
	HTTPClient *http.Client
	// MaxBodyBytes caps an activity body; default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// PollInterval is how often RunOutbox looks for work when idle;
	// default one second.
	PollInterval time.Duration
	// ResolveTimeout bounds the identity check inside an invoke; default
	// DefaultResolveTimeout.
	ResolveTimeout time.Duration
	// MaxSkew is the clock skew tolerated on token times; default
	// DefaultMaxSkew, at most MaxSkewLimit.
	MaxSkew time.Duration
	// Clicks limits the clicks of each Teams account (tenant and
	// Microsoft Entra object id; limits.clicks_per_minute): over it the
	// answer says when to try again and nothing is acted on. nil: no
	// limit.
	Clicks *chatlimit.Limiter
}

// Bot is the Teams adapter. It is safe for concurrent use. Create it with
// New, mount its endpoint with Register, run RunOutbox, and call Shutdown
// when stopping.
type Bot struct {
	opts    Options
	svc     *approvals.Service
	res     IdentityResolver
	clock   clock.Clock
	log     *slog.Logger
	tenants []string
	// hosts are the service URL hosts the bot accepts and calls.
	hosts hostlist.List

	verifier *tokenVerifier
	api      *connector

	// work is what runs after an activity was answered; it ends with
	// Shutdown.
	work *ackwork.Group

	invokes *invokeCache
	convs   *conversationCache
	// out delivers the cards from the outbox.
	out *cards.Deliverer
}

// cloud is the set of Bot Framework endpoints of one channel service.
type cloud struct {
	metadataURL, tokenURL, issuer, scope string
}

func cloudOf(channelService string) (cloud, error) {
	switch strings.TrimSuffix(channelService, "/") {
	case "":
		return cloud{DefaultOpenIDMetadataURL, DefaultTokenURL, PublicIssuer, PublicScope}, nil
	case GovChannelService:
		return cloud{GovOpenIDMetadataURL, GovTokenURL, GovIssuer, GovScope}, nil
	default:
		return cloud{}, fmt.Errorf("teams.channel_service %q is not a channel service signoff knows: use %q for the US Government cloud or leave it empty for the public cloud", channelService, GovChannelService)
	}
}

// New checks opts and returns a Bot. It does no network I/O: the OpenID
// metadata and keys are fetched on the first activity (or by Discover), the
// bot's token on the first post.
func New(opts Options) (*Bot, error) {
	var problems []string
	if opts.Service == nil {
		problems = append(problems, "an approvals service (which also stores conversation references) is required")
	}
	if opts.Resolver == nil {
		problems = append(problems, "an identity resolver (the account-link flow) is required: configure idp")
	}
	if opts.AppID == "" {
		problems = append(problems, "teams.app_id is required: the Microsoft app id of the Azure Bot resource")
	}
	if opts.AppPassword == "" {
		problems = append(problems, "teams.app_password is required: a client secret of that app (set teams.app_password_file)")
	}
	var tenants []string
	for _, t := range opts.TenantIDs {
		if t = strings.TrimSpace(t); t != "" {
			tenants = append(tenants, t)
		}
	}
	if len(tenants) == 0 {
		problems = append(problems, "teams.tenant_ids is required: the Microsoft Entra tenants whose activities are accepted")
	}
	cl, err := cloudOf(opts.ChannelService)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if opts.OpenIDMetadataURL == "" {
		opts.OpenIDMetadataURL = cl.metadataURL
	}
	if opts.TokenURL == "" {
		opts.TokenURL = cl.tokenURL
	}
	for _, u := range []struct{ key, val string }{
		{"teams.openid_metadata_url", opts.OpenIDMetadataURL},
		{"teams.token_url", opts.TokenURL},
		{"teams.service_url", opts.ServiceURL},
		{"public_url", opts.PublicURL},
	} {
		if u.val == "" {
			continue
		}
		if p, err := url.Parse(u.val); err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
			problems = append(problems, fmt.Sprintf("%s %q must be an absolute http(s) URL", u.key, u.val))
		}
	}
	if opts.ServiceURLHosts == nil {
		opts.ServiceURLHosts = DefaultServiceURLHosts
	}
	hosts, err := hostlist.Parse(opts.ServiceURLHosts)
	switch {
	case err != nil:
		problems = append(problems, "teams.service_url_hosts: "+err.Error())
	case hosts.Empty():
		problems = append(problems, "teams.service_url_hosts is empty: list the Bot Connector hosts (default "+strings.Join(DefaultServiceURLHosts, ", ")+")")
	case opts.ServiceURL != "":
		if host, err := hosts.CheckURL(opts.ServiceURL); err != nil && host != "" {
			problems = append(problems, fmt.Sprintf("teams.service_url %q: its host %q is not in teams.service_url_hosts; add it there or use a Bot Connector host", opts.ServiceURL, host))
		}
	}
	if opts.MaxSkew < 0 || opts.MaxSkew > MaxSkewLimit {
		problems = append(problems, fmt.Sprintf("the token clock skew %s must be between 0 (meaning %s) and %s", opts.MaxSkew, DefaultMaxSkew, MaxSkewLimit))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("teamsbot: %s", strings.Join(problems, "; "))
	}
	cards.Defaults{
		Clock: &opts.Clock, Logger: &opts.Logger, HTTPClient: &opts.HTTPClient, MaxBodyBytes: &opts.MaxBodyBytes,
		PollInterval: &opts.PollInterval, RequestURL: &opts.RequestURL,
		CallTimeout: DefaultCallTimeout, MaxBody: DefaultMaxBodyBytes, PublicURL: opts.PublicURL,
	}.Apply()
	if opts.ResolveTimeout <= 0 {
		opts.ResolveTimeout = DefaultResolveTimeout
	}
	if opts.MaxSkew == 0 {
		opts.MaxSkew = DefaultMaxSkew
	}
	log := opts.Logger.With("component", "teamsbot")
	keys := newKeySet(opts.OpenIDMetadataURL, opts.HTTPClient, opts.Clock, log)
	b := &Bot{
		opts:     opts,
		svc:      opts.Service,
		res:      opts.Resolver,
		clock:    opts.Clock,
		log:      log,
		tenants:  tenants,
		hosts:    hosts,
		verifier: newTokenVerifier(keys, cl.issuer, opts.AppID, opts.Clock, opts.MaxSkew),
		api: newConnector(opts.HTTPClient, opts.Clock, hosts, &clientcredentials.Config{
			ClientID:     opts.AppID,
			ClientSecret: opts.AppPassword,
			TokenURL:     opts.TokenURL,
			Scopes:       []string{cl.scope},
		}),
		invokes: newInvokeCache(),
		convs:   newConversationCache(),
	}
	b.out = newDeliverer(b)
	b.work = ackwork.New("teams activity", DefaultWorkTimeout, b.log)
	return b, nil
}

// Register mounts POST /teams/messages.
func (b *Bot) Register(mux chatflow.Mux) {
	mux.Handle("POST "+MessagesPath, http.HandlerFunc(b.handleMessages))
}

// Discover fetches the OpenID metadata and signing keys now, so the first
// activity does not wait for them. Serve may call it at start-up; an error
// is worth a warning, not a failed start (activities are refused until the
// keys can be fetched, and fetching is retried).
func (b *Bot) Discover(ctx context.Context) error {
	if err := b.verifier.keys.prefetch(ctx); err != nil {
		return fmt.Errorf("teamsbot: %w", err)
	}
	return nil
}

// Shutdown stops taking new activity work and waits until the work already
// accepted (audit records, replies) has finished or ctx ends; then it
// cancels what is left. Activities arriving afterwards are still verified
// and answered, but clicks are not acted on (the person is told to click
// again).
func (b *Bot) Shutdown(ctx context.Context) error {
	if err := b.work.Shutdown(ctx); err != nil {
		return fmt.Errorf("teamsbot: %w", err)
	}
	return nil
}

// track counts work that Shutdown must wait for; see ackwork.Group.Track.
func (b *Bot) track() (done func(), ok bool) { return b.work.Track() }

// spawn runs fn in the background, bound to the bot's lifetime and
// DefaultWorkTimeout. It reports false when the bot is shutting down.
func (b *Bot) spawn(fn func(ctx context.Context)) bool { return b.work.Spawn(fn) }

// flow is the path a verified click takes to its outcome (bot/chatflow),
// with the bot's current resolver bounded by ResolveTimeout.
func (b *Bot) flow() *chatflow.Flow {
	return chatflow.New(chatflow.Options{
		Service: b.svc, Resolver: boundedResolver{b}, Logger: b.log,
		// A Teams vote cannot carry a reason through a step-up sign-in;
		// the reason comes with the card's Reason field.
		StepUpFirst: true,
		// Audit records of unverified clicks are written after the answer.
		Later: b.spawn,
	})
}

// tenant returns the configured spelling of tenant id t, or "" when t is
// not configured.
func (b *Bot) tenant(t string) string {
	if t == "" {
		return ""
	}
	for _, c := range b.tenants {
		if strings.EqualFold(c, t) {
			return c
		}
	}
	return ""
}

// rejectCallback writes the callback.rejected audit record; failures are
// logged, not returned: the caller refuses the activity either way.
func (b *Bot) rejectCallback(ctx context.Context, tenant string, reason chatflow.RejectReason) {
	if err := b.svc.RecordRejectedCallback(context.WithoutCancel(ctx), Platform, tenant, string(reason), "POST "+MessagesPath); err != nil {
		b.log.Error("could not audit a rejected activity", "reason", reason, "err", err)
	}
}

// errShuttingDown is reported when work arrives after Shutdown.
var errShuttingDown = errors.New("teamsbot: shutting down")
