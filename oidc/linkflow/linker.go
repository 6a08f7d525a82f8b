// Package linkflow links an approver's chat account to the person at the
// company's OpenID Provider: the account-link web flow and its pages
// (Linker.Register), the binding check against the chat platform's
// directory, step-up sign-ins, refresh of group claims and the sweep of
// stale links. What it verifies it hands on as the core's
// identity.Identity. Verifying CI tokens is package oidc's job.
package linkflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/ratelimit"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
	"github.com/signoff-dev/signoff/storage"
)

// Defaults for LinkerOptions.
const (
	// DefaultAttemptTTL is how long a sign-in link stays usable: from
	// Begin to opening it, and again from opening it to the IdP's answer.
	DefaultAttemptTTL = 10 * time.Minute
	// DefaultLinkMaxAge bounds a link from its LinkedAt.
	DefaultLinkMaxAge = 720 * time.Hour
	// DefaultGroupsMaxAge is how old an approver's verified groups may be
	// before they are re-read at the IdP.
	DefaultGroupsMaxAge = 24 * time.Hour
	// DefaultCleanupInterval is how often RunCleanup removes expired
	// sign-in attempts.
	DefaultCleanupInterval = 5 * time.Minute
	// DefaultGroupsClaim names the ID token claim holding the groups.
	DefaultGroupsClaim = "groups"
	// DefaultSignInLinksPerMinute caps the sign-in links per chat account
	// and minute. A person needs one; a click flood gets no more.
	DefaultSignInLinksPerMinute = 5
	// lookupTimeout bounds one chat-platform account lookup.
	lookupTimeout = 10 * time.Second
)

// DefaultPersonClaims is idp.person_claims when the operator sets none.
var DefaultPersonClaims = []string{"preferred_username"}

// Sign-in attempt purposes (storage.LinkAttempt.Purpose).
const (
	// PurposeLink links a chat account to an IdP identity.
	PurposeLink = "link"
	// PurposeStepUp is a fresh sign-in that completes one vote.
	PurposeStepUp = "step_up"
)

// Link paths, relative to the public URL.
const (
	StartPath    = "/link/start"
	CallbackPath = "/link/callback"
)

// LinkReason is why a vote needs the approver to (re-)link
// (LinkRequiredError.Reason): one of the LinkReason… constants below,
// stable across releases. The audit log carries it as a string (the
// "detail" of a vote.rejected record).
type LinkReason string

// Reasons a vote needs the approver to (re-)link.
const (
	// LinkReasonNotLinked: the chat account has no link.
	LinkReasonNotLinked LinkReason = "not_linked"
	// LinkReasonExpired: the link is older than the link max age.
	LinkReasonExpired LinkReason = "link_expired"
	// LinkReasonStale: the IdP no longer backs the link (a refresh was
	// refused: user disabled, consent revoked) or an operator marked it.
	LinkReasonStale LinkReason = "link_stale"
	// LinkReasonReverify: the groups are older than the groups max age and
	// signoff holds no usable refresh token to re-read them.
	LinkReasonReverify LinkReason = "reverify"
	// LinkReasonIssuerChanged: the link was made at another IdP than the
	// one configured now.
	LinkReasonIssuerChanged LinkReason = "issuer_changed"
	// LinkReasonRateLimited: the chat account was sent enough sign-in
	// links for now; the error carries no URL.
	LinkReasonRateLimited LinkReason = "rate_limited"
)

// ErrIdPUnavailable means the IdP could not be reached (discovery, token
// endpoint or userinfo failed on the network or with a server error).
// Nothing was decided: callers fail closed and may retry later. Test with
// errors.Is.
var ErrIdPUnavailable = errors.New("identity provider unavailable")

// LinkRequiredError means a vote from the chat account cannot count until
// the person signs in at the IdP: the account is not linked, the link
// expired or went stale, or the groups must be confirmed again. URL is a
// fresh sign-in link for that chat account (from Begin), which adapters
// send to the person privately. Find it with errors.As.
type LinkRequiredError struct {
	// URL is a single-use sign-in link bound to the chat account.
	URL string
	// Reason is one of the LinkReason… constants.
	Reason LinkReason
	// Message says what is wrong and what to do, for the approver.
	Message string
}

// Error returns Message.
func (e *LinkRequiredError) Error() string { return e.Message }

// PlatformUser names a chat account: the platform ("slack", "teams",
// "dev"), the workspace (the Slack team id, the Teams tenant id) and the
// platform's user id (the Slack user id, the Teams aadObjectId).
// Conversation is not part of the account's name: it says where the
// account clicked (a Teams conversation id), which the platform's member
// lookup and the notices to the account need.
type PlatformUser struct {
	Platform     string
	Workspace    string
	UserID       string
	Conversation string
}

// String names the chat account for messages and logs.
func (p PlatformUser) String() string {
	return fmt.Sprintf("%s user %s in %s", p.Platform, p.UserID, p.Workspace)
}

// Account is the chat account p names, without where it clicked.
func (p PlatformUser) Account() identity.Account {
	return identity.Account{Platform: p.Platform, Workspace: p.Workspace, User: p.UserID}
}

func (p PlatformUser) check() error {
	if p.Platform == "" || p.UserID == "" {
		return fmt.Errorf("oidc: a chat account needs a platform and a user id (got %q, %q)", p.Platform, p.UserID)
	}
	return nil
}

// LinkWriter records verified links with their audit records. It is
// implemented by *approvals.Service; the Linker never writes links or
// audit records itself.
type LinkWriter interface {
	// SaveLink stores a link made by a browser sign-in (replacing any
	// earlier link of that chat account, and any link of another chat
	// account in the same workspace to the same identity) and tells the
	// chat account; via is the conversation it clicked in, if known.
	SaveLink(ctx context.Context, l storage.IdentityLink, via string) error
	// RefuseLink records a sign-in that did not prove to be the chat
	// account's owner, and tells the chat account.
	RefuseLink(ctx context.Context, r identity.LinkRefusal) error
	// RefuseStepUp records a step-up sign-in whose vote was not cast and
	// tells the chat account.
	RefuseStepUp(ctx context.Context, r identity.StepUpRefusal) error
	// RefreshLink stores what a refresh or step-up sign-in confirmed for
	// the same identity (groups, verified_at, a rotated refresh token).
	RefreshLink(ctx context.Context, l storage.IdentityLink) error
	// MarkLinkStale records that the IdP no longer backs a link.
	MarkLinkStale(ctx context.Context, platform, workspace, platformUser, reason string) error
}

// Reasons a binding is refused (identity.LinkRefusal.Reason). This is the
// one place they are declared; the type is identity's, beside the field.
const (
	RefusalMismatch       identity.LinkRefusalReason = "identity_mismatch"
	RefusalNoIdPEmail     identity.LinkRefusalReason = "no_idp_email"
	RefusalEmailUnverif   identity.LinkRefusalReason = "email_unverified"
	RefusalNoChatEmail    identity.LinkRefusalReason = "no_chat_email"
	RefusalLookupFailed   identity.LinkRefusalReason = "lookup_failed"
	RefusalUnknownAccount identity.LinkRefusalReason = "unknown_account"
	RefusalNoDirectory    identity.LinkRefusalReason = "no_directory"
)

// Reasons a step-up sign-in did not cast its vote
// (identity.StepUpRefusal.Reason). This is the one place they are
// declared; the type is identity's, beside the field.
const (
	// StepUpRefusalLinkStale: the chat account has no usable link (none,
	// stale, of another issuer, too old or unproven), so the sign-in
	// cannot stand in for it. Its value is LinkReasonStale's.
	StepUpRefusalLinkStale = identity.StepUpRefusalReason(LinkReasonStale)
	// StepUpRefusalIdentityMismatch: the sign-in was by another identity
	// than the one the chat account is linked to.
	StepUpRefusalIdentityMismatch identity.StepUpRefusalReason = "step_up_identity_mismatch"
	// StepUpRefusalNotFresh: the IdP answered from a sign-in made before
	// the step-up began (it ignored prompt=login), so no one signed in
	// again.
	StepUpRefusalNotFresh identity.StepUpRefusalReason = "step_up_not_fresh"
	// StepUpRefusalVoteRefused: approvals refused the vote (and audited
	// the refusal itself).
	StepUpRefusalVoteRefused identity.StepUpRefusalReason = "vote_refused"
)

// LinkerOptions configure a Linker. Issuer, ClientID, RedirectURL, Store
// and Links are required.
type LinkerOptions struct {
	// Issuer is the IdP's issuer URL (https, or http on loopback).
	Issuer string
	// ClientID and ClientSecret identify signoff at the IdP. The secret may
	// be empty for a public client; PKCE is used either way.
	ClientID     string
	ClientSecret string
	// Scopes are requested at sign-in; "openid" is added when missing.
	// offline_access asks for a refresh token, which is kept (encrypted)
	// only when TokenKey is set.
	Scopes []string
	// GroupsClaim names the claim with the person's groups; default
	// "groups". When the ID token lacks it, the userinfo endpoint is asked.
	GroupsClaim string
	// LinkMatch is how a sign-in proves to be the chat account's owner
	// before a link is saved: LinkMatchEmail (the default) or
	// LinkMatchNone. With LinkMatchEmail, every platform that links
	// accounts needs an AccountDirectory (SetDirectory).
	LinkMatch string
	// AssumeEmailVerified (idp.email_verified: assumed) lets an email the
	// IdP does not mark as verified or unverified prove a binding; by
	// default only email_verified: true (or Entra ID's xms_edov: true)
	// does.
	AssumeEmailVerified bool
	// PersonClaims (idp.person_claims) names the ID token claims kept with
	// a link for the self-approval check; nil means
	// DefaultPersonClaims, an empty slice none.
	PersonClaims []string
	// SignInLinksPerMinute caps the sign-in links one chat account gets
	// per minute (each one is a stored attempt); default
	// DefaultSignInLinksPerMinute. Clicks beyond it get a
	// *LinkRequiredError without a URL, saying when to try again.
	SignInLinksPerMinute int
	// RedirectURL is public_url + "/link/callback", registered at the IdP.
	// The start links Begin returns share its scheme, host and prefix.
	RedirectURL string
	// LinkMaxAge bounds a link from LinkedAt; default DefaultLinkMaxAge.
	LinkMaxAge time.Duration
	// GroupsMaxAge is how old VerifiedAt may be before the groups are
	// re-read; default DefaultGroupsMaxAge. Use the same value as
	// approvals.Options.GroupsMaxAge.
	GroupsMaxAge time.Duration
	// AttemptTTL is how long a sign-in link stays usable; default
	// DefaultAttemptTTL.
	AttemptTTL time.Duration
	// TokenKey (idp.token_encryption_key, at least 32 bytes) encrypts
	// refresh tokens at rest. nil means no refresh token is kept (and
	// offline_access is not requested): when the groups are too old the
	// person signs in again.
	//
	// The AES-256-GCM key is HKDF-SHA256(TokenKey, no salt, info "signoff
	// refresh token v1"), 32 bytes. A sealed token is 0x01 || 12-byte random
	// nonce || ciphertext+tag, authenticated together with the link's
	// platform, workspace, chat user, issuer and subject, so it opens only
	// for the link it was stored in. Changing the key makes stored tokens
	// unreadable: those approvers are asked to sign in again (their links
	// are not marked stale).
	TokenKey []byte
	// Store keeps the sign-in attempts and is read for links.
	Store storage.Store
	// Links writes links and their audit records (*approvals.Service).
	Links LinkWriter
	// HTTPClient talks to the IdP; default a client with a 15 s timeout.
	HTTPClient *http.Client
	// Clock is the time source; default the wall clock.
	Clock clock.Clock
	// Logger receives events, never tokens; default discard.
	Logger *slog.Logger
	// OnStepUp completes a vote after a step-up sign-in. Without it,
	// BeginStepUp fails.
	OnStepUp identity.StepUpFunc
	// StepUpPolicy tells the step-up sign-in which max_age and acr_values
	// to ask for. Without it (or when it returns nil) the IdP is asked for
	// a fresh login (prompt=login, max_age=0).
	StepUpPolicy identity.StepUpPolicyFunc
	// DiscoveryRetry is how soon a failed discovery is tried again;
	// default oidc.DefaultDiscoveryRetry.
	DiscoveryRetry time.Duration
	// CleanupInterval paces RunCleanup; default DefaultCleanupInterval.
	CleanupInterval time.Duration
	// SweepInterval paces RunSweep, the background refresh of links whose
	// groups are older than GroupsMaxAge; default GroupsMaxAge/4, at least
	// MinSweepInterval and at most MaxSweepInterval.
	SweepInterval time.Duration
	// SweepConcurrency bounds the refreshes one sweep pass runs at once;
	// default DefaultSweepConcurrency.
	SweepConcurrency int
}

// Linker runs the approver account-link flow (authorization code with PKCE
// at the company's IdP), the step-up sign-ins for high-risk votes, and
// decides which identity a vote from a chat account counts under
// (Resolve). It is safe for concurrent use.
//
// A sign-in link is bound to one chat account (Begin), and, once opened,
// to one browser by a cookie; it is single use and expires. The callback
// checks state, the browser cookie, the PKCE verifier (at the IdP), the ID
// token's signature, issuer, audience, expiry and nonce before anything is
// stored. Refresh tokens are kept only encrypted (see TokenKey). No token
// is ever logged or written to the audit log.
type Linker struct {
	opts        LinkerOptions
	clock       clock.Clock
	log         *slog.Logger
	sealer      *tokenSealer
	scopes      []string
	startURL    string // absolute URL of StartPath
	cookiePath  string
	secure      bool
	idp         *idpClient
	userLocksMu sync.Mutex
	userLocks   map[string]chan struct{}
	linkLimits  *ratelimit.Limiter

	dirMu       sync.RWMutex
	directories map[string]AccountDirectory

	displayMu sync.Mutex
	displayed map[string]displayedAccount

	// counters are the identity events /metrics reports (see Metrics).
	counters linkerCounters
	// sweepGate lets one Sweep pass run at a time.
	sweepGate chan struct{}
}

// SetDirectory makes d the account directory of platform: the chat
// adapter that can say who owns one of its accounts. Call it while wiring,
// before serving.
func (l *Linker) SetDirectory(platform string, d AccountDirectory) {
	l.dirMu.Lock()
	defer l.dirMu.Unlock()
	l.directories[platform] = d
}

func (l *Linker) directory(platform string) AccountDirectory {
	l.dirMu.RLock()
	defer l.dirMu.RUnlock()
	return l.directories[platform]
}

// LinkMatch returns how this Linker proves a binding (LinkMatch…).
func (l *Linker) LinkMatch() string { return l.opts.LinkMatch }

// NewLinker checks opts and returns a Linker. It does no network I/O: the
// IdP is discovered on first use and again after a failure (every
// DiscoveryRetry), so signoff starts while the IdP is down and refuses
// sign-ins with a clear message until it answers.
func NewLinker(opts LinkerOptions) (*Linker, error) {
	if err := idtoken.CheckIssuerURL(opts.Issuer); err != nil {
		return nil, fmt.Errorf("oidc: idp.issuer: %w", err)
	}
	if opts.ClientID == "" {
		return nil, errors.New("oidc: idp.client_id is required: the client id registered for signoff at the identity provider")
	}
	if opts.Store == nil || opts.Links == nil {
		return nil, errors.New("oidc: NewLinker needs a Store and a LinkWriter")
	}
	if opts.LinkMaxAge < 0 || opts.GroupsMaxAge < 0 || opts.AttemptTTL < 0 || opts.DiscoveryRetry < 0 || opts.CleanupInterval < 0 {
		return nil, errors.New("oidc: LinkMaxAge, GroupsMaxAge, AttemptTTL, DiscoveryRetry and CleanupInterval must not be negative")
	}
	redirect, err := url.Parse(opts.RedirectURL)
	if err != nil || redirect.Host == "" || redirect.RawQuery != "" || redirect.Fragment != "" {
		return nil, fmt.Errorf("oidc: redirect URL %q must be an absolute URL: public_url + %s", opts.RedirectURL, CallbackPath)
	}
	switch {
	case redirect.Scheme == "https":
	case redirect.Scheme == "http" && hostlist.IsLoopback(redirect.Hostname()):
	default:
		return nil, fmt.Errorf("oidc: redirect URL %q must use https (http only on a loopback address): set public_url to the https address approvers' browsers reach", opts.RedirectURL)
	}
	if !strings.HasSuffix(redirect.Path, CallbackPath) {
		return nil, fmt.Errorf("oidc: redirect URL %q must end in %s (public_url + %s)", opts.RedirectURL, CallbackPath, CallbackPath)
	}
	prefix := strings.TrimSuffix(redirect.Path, CallbackPath)

	if opts.GroupsClaim == "" {
		opts.GroupsClaim = DefaultGroupsClaim
	}
	switch opts.LinkMatch {
	case "":
		opts.LinkMatch = LinkMatchEmail
	case LinkMatchEmail, LinkMatchNone:
	default:
		return nil, fmt.Errorf("oidc: idp.link_match %q is neither %q nor %q", opts.LinkMatch, LinkMatchEmail, LinkMatchNone)
	}
	if opts.PersonClaims == nil {
		opts.PersonClaims = DefaultPersonClaims
	}
	if opts.SignInLinksPerMinute <= 0 {
		opts.SignInLinksPerMinute = DefaultSignInLinksPerMinute
	}
	if opts.LinkMaxAge == 0 {
		opts.LinkMaxAge = DefaultLinkMaxAge
	}
	if opts.GroupsMaxAge == 0 {
		opts.GroupsMaxAge = DefaultGroupsMaxAge
	}
	if opts.AttemptTTL == 0 {
		opts.AttemptTTL = DefaultAttemptTTL
	}
	if opts.DiscoveryRetry == 0 {
		opts.DiscoveryRetry = oidc.DefaultDiscoveryRetry
	}
	if opts.CleanupInterval == 0 {
		opts.CleanupInterval = DefaultCleanupInterval
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = defaultSweepInterval(opts.GroupsMaxAge)
	}
	if opts.SweepConcurrency <= 0 {
		opts.SweepConcurrency = DefaultSweepConcurrency
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: idtoken.FetchTimeout}
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	l := &Linker{
		opts:        opts,
		clock:       opts.Clock,
		log:         opts.Logger,
		startURL:    (&url.URL{Scheme: redirect.Scheme, Host: redirect.Host, Path: prefix + StartPath}).String(),
		cookiePath:  prefix + "/link/",
		secure:      redirect.Scheme == "https",
		userLocks:   map[string]chan struct{}{},
		linkLimits:  ratelimit.New(opts.SignInLinksPerMinute, opts.Clock),
		directories: map[string]AccountDirectory{},
		displayed:   map[string]displayedAccount{},
		sweepGate:   make(chan struct{}, 1),
	}
	if opts.LinkMatch == LinkMatchNone {
		l.log.Warn("idp.link_match is none: signoff does not check that the person who completes a sign-in link owns the chat account it was sent to; anyone an approver forwards a link to, or who forwards theirs to an approver, can vote as someone else. Set idp.link_match: email unless your chat accounts have no email.")
	}
	if opts.TokenKey != nil {
		if l.sealer, err = newTokenSealer(opts.TokenKey); err != nil {
			return nil, fmt.Errorf("oidc: idp.token_encryption_key: %w", err)
		}
	}
	l.scopes = requestedScopes(opts.Scopes, l.sealer != nil)
	if l.sealer == nil && slices.Contains(opts.Scopes, "offline_access") {
		l.log.Warn("idp.scopes asks for offline_access but no idp.token_encryption_key is set: refresh tokens are not requested, approvers sign in again when their groups are older than groups_max_age")
	}
	l.idp = &idpClient{
		issuer:       opts.Issuer,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		redirectURL:  opts.RedirectURL,
		scopes:       l.scopes,
		groupsClaim:  opts.GroupsClaim,
		personClaims: opts.PersonClaims,
		httpClient:   opts.HTTPClient,
		clock:        opts.Clock,
		retry:        opts.DiscoveryRetry,
		log:          opts.Logger,
		sem:          make(chan struct{}, 1),
	}
	return l, nil
}

// requestedScopes is scopes with openid first, without duplicates, and
// without offline_access when refresh tokens are not kept.
func requestedScopes(scopes []string, keepRefresh bool) []string {
	out := []string{"openid"}
	for _, s := range scopes {
		if s == "" || slices.Contains(out, s) || (s == "offline_access" && !keepRefresh) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Begin creates a single-use sign-in link for the chat account p and
// returns its URL (public_url + /link/start?id=…). The link id holds 256
// random bits and expires after AttemptTTL; the adapter sends the URL to
// that person privately.
func (l *Linker) Begin(ctx context.Context, p PlatformUser) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	if wait, ok := l.linkLimits.Allow(signInKey(p)); !ok {
		return "", &LinkRequiredError{Reason: LinkReasonRateLimited, Message: fmt.Sprintf(
			"you were sent %d sign-in links in the last minute; use the latest one, or click again in %s for a new one", l.opts.SignInLinksPerMinute, wait.Round(time.Second))}
	}
	u, err := l.newAttempt(ctx, storage.LinkAttempt{Purpose: PurposeLink, Platform: p.Platform, Workspace: p.Workspace, PlatformUser: p.UserID, Conversation: p.Conversation})
	if err == nil {
		l.counters.linkAttempt()
	}
	return u, err
}

// BeginStepUp creates a single-use sign-in link that, once the person
// signs in again at the IdP (prompt=login, with the action's max_age and
// acr_values), casts decision ("approve" or "deny") on request requestID
// for the chat account p through OnStepUp. The chat account must be linked
// (else a *LinkRequiredError), and the fresh sign-in must be the linked
// identity.
func (l *Linker) BeginStepUp(ctx context.Context, p PlatformUser, requestID, decision string) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	if l.opts.OnStepUp == nil {
		return "", errors.New("oidc: step-up sign-in is not wired (LinkerOptions.OnStepUp is nil)")
	}
	if requestID == "" {
		return "", errors.New("oidc: a step-up sign-in needs a request id")
	}
	if decision != string(storage.DecisionApprove) && decision != string(storage.DecisionDeny) {
		return "", fmt.Errorf("oidc: step-up decision %q is neither approve nor deny", decision)
	}
	link, err := l.readLink(ctx, p)
	if err != nil {
		return "", err
	}
	if lr := l.checkLink(ctx, p, link); lr != nil {
		return "", lr
	}
	// A step-up stands in for the linked identity: its binding must be
	// proved like any click's.
	if _, err := l.checkLegacyBinding(ctx, p, link); err != nil {
		return "", err
	}
	if wait, ok := l.linkLimits.Allow(signInKey(p)); !ok {
		return "", &LinkRequiredError{Reason: LinkReasonRateLimited, Message: fmt.Sprintf(
			"you were sent %d sign-in links in the last minute; use the latest one, or click again in %s for a new one", l.opts.SignInLinksPerMinute, wait.Round(time.Second))}
	}
	return l.newAttempt(ctx, storage.LinkAttempt{
		Purpose: PurposeStepUp, Platform: p.Platform, Workspace: p.Workspace, PlatformUser: p.UserID,
		Conversation: p.Conversation, RequestID: requestID, Decision: decision,
	})
}

func (l *Linker) newAttempt(ctx context.Context, a storage.LinkAttempt) (string, error) {
	id, err := idtoken.RandomToken()
	if err != nil {
		return "", err
	}
	now := l.clock.Now().UTC()
	a.ID, a.CreatedAt, a.ExpiresAt = id, now, now.Add(l.opts.AttemptTTL)
	err = l.opts.Store.Update(ctx, func(tx storage.Tx) error { return tx.CreateLinkAttempt(a) })
	if err != nil {
		return "", fmt.Errorf("oidc: store sign-in attempt for %s user %s: %w", a.Platform, a.PlatformUser, err)
	}
	l.log.Info("sign-in link created", "purpose", a.Purpose, "platform", a.Platform, "workspace", a.Workspace, "platform_user", a.PlatformUser, "attempt", attemptRef(id), "request", a.RequestID)
	return l.startURL + "?" + url.Values{"id": {id}}.Encode(), nil
}

// ResolvesStoredLinks reports true: the identities Resolve returns are the
// links in the approvals store, which a vote can read again in its own
// transaction (bot/chatflow.StoredLinks).
func (l *Linker) ResolvesStoredLinks() bool { return true }

// Resolve returns the identity a vote from the chat account p counts
// under: its link's identity, groups and last sign-in (AuthTime, ACR,
// AMR). When the account is not linked, the link is older than
// LinkMaxAge, stale, or made at another issuer, it returns a
// *LinkRequiredError carrying a fresh sign-in URL. When the groups were
// verified longer than GroupsMaxAge ago, it refreshes them at the IdP with
// the stored refresh token (storing the new groups and a rotated token
// through RefreshLink); without a refresh token it returns a
// *LinkRequiredError; when the IdP refuses the refresh the link is marked
// stale and a *LinkRequiredError returned. When the IdP cannot be reached,
// the error wraps ErrIdPUnavailable and nothing is marked.
func (l *Linker) Resolve(ctx context.Context, p PlatformUser) (identity.Identity, error) {
	if err := p.check(); err != nil {
		return identity.Identity{}, err
	}
	// One refresh per chat account at a time: with refresh-token rotation a
	// second concurrent refresh would present a used token and be refused.
	unlock, err := l.lockUser(ctx, p)
	if err != nil {
		return identity.Identity{}, err
	}
	defer unlock()

	link, err := l.readLink(ctx, p)
	if err != nil {
		return identity.Identity{}, err
	}
	if lr := l.checkLink(ctx, p, link); lr != nil {
		return identity.Identity{}, lr
	}
	if link, err = l.checkLegacyBinding(ctx, p, link); err != nil {
		return identity.Identity{}, err
	}
	now := l.clock.Now()
	if now.Sub(link.VerifiedAt) > l.opts.GroupsMaxAge {
		if link, err = l.refresh(ctx, p, link); err != nil {
			return identity.Identity{}, err
		}
	}
	return identity.FromLink(link), nil
}

// readLink returns p's link; not linked is a *LinkRequiredError.
func (l *Linker) readLink(ctx context.Context, p PlatformUser) (storage.IdentityLink, error) {
	var link storage.IdentityLink
	err := l.opts.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		link, err = tx.Link(p.Platform, p.Workspace, p.UserID)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return link, l.linkRequired(ctx, p, LinkReasonNotLinked,
			"your chat account is not linked to your company sign-in yet: open the link to sign in once, then click again")
	}
	if err != nil {
		return link, fmt.Errorf("oidc: read link of %s: %w", p, err)
	}
	return link, nil
}

// checkLink refuses a link that may not vouch for a vote whatever its
// groups: stale, too old, or from another issuer. It returns nil when the
// link is usable.
func (l *Linker) checkLink(ctx context.Context, p PlatformUser, link storage.IdentityLink) error {
	now := l.clock.Now()
	switch {
	case link.Stale:
		why := "the identity provider no longer confirms it"
		if link.StaleReason != "" {
			why = link.StaleReason
		}
		return l.linkRequired(ctx, p, LinkReasonStale, fmt.Sprintf("your account link is no longer valid (%s): open the link to sign in again, then click again", why))
	case link.Issuer != l.opts.Issuer:
		return l.linkRequired(ctx, p, LinkReasonIssuerChanged, "your account was linked at another identity provider than the one signoff uses now: open the link to sign in again, then click again")
	case now.Sub(link.LinkedAt) > l.opts.LinkMaxAge:
		return l.linkRequired(ctx, p, LinkReasonExpired, fmt.Sprintf("your account link is older than %s and has expired: open the link to sign in again, then click again", l.opts.LinkMaxAge))
	}
	return nil
}

// linkRequired builds a *LinkRequiredError with a fresh sign-in URL. If
// the URL cannot be made (the store failed), that error is returned.
func (l *Linker) linkRequired(ctx context.Context, p PlatformUser, reason LinkReason, message string) error {
	u, err := l.Begin(ctx, p)
	var limited *LinkRequiredError
	if errors.As(err, &limited) {
		// Enough links for now: say so instead of making another.
		return &LinkRequiredError{Reason: reason, Message: message + " (" + limited.Message + ")"}
	}
	if err != nil {
		return fmt.Errorf("oidc: %s (and no sign-in link could be made: %w)", message, err)
	}
	return &LinkRequiredError{URL: u, Reason: reason, Message: message}
}

// lockUser serializes Resolve (and a sweep's refresh) per chat account, so
// that a rotating refresh token is never spent twice at once: first within
// this process (a small entry per chat account ever resolved), then, when
// the store is shared by replicas (a storage.Locker, PostgreSQL), across
// all of them, so two replicas refreshing one account at the same instant
// take turns too.
func (l *Linker) lockUser(ctx context.Context, p PlatformUser) (func(), error) {
	key := p.Platform + "\x00" + p.Workspace + "\x00" + p.UserID
	l.userLocksMu.Lock()
	ch := l.userLocks[key]
	if ch == nil {
		ch = make(chan struct{}, 1)
		l.userLocks[key] = ch
	}
	l.userLocksMu.Unlock()
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("oidc: waiting for another check of %s: %w", p, ctx.Err())
	}
	locker, shared := l.opts.Store.(storage.Locker)
	if !shared {
		return func() { <-ch }, nil
	}
	unlockShared, err := locker.Lock(ctx, "link "+key)
	if err != nil {
		<-ch
		return nil, fmt.Errorf("oidc: waiting for another replica's check of %s: %w", p, err)
	}
	return func() { unlockShared(); <-ch }, nil
}

// refresh re-reads the groups of link at the IdP with its refresh token,
// for a click (Resolve): what refreshGroups could not do becomes a
// *LinkRequiredError with a fresh sign-in link, or the IdP's unavailability.
func (l *Linker) refresh(ctx context.Context, p PlatformUser, link storage.IdentityLink) (storage.IdentityLink, error) {
	age := l.clock.Now().Sub(link.VerifiedAt).Round(time.Second)
	updated, err := l.refreshGroups(ctx, p, link, refreshByClick)
	var refused *refreshRefusedError
	switch {
	case err == nil:
		return updated, nil
	case errors.Is(err, errNoRefreshToken):
		return link, l.linkRequired(ctx, p, LinkReasonReverify, fmt.Sprintf(
			"your groups were last confirmed by the identity provider %s ago (at most %s allowed): open the link to sign in again, then click again", age, l.opts.GroupsMaxAge))
	case errors.Is(err, errRefreshTokenUnreadable):
		return link, l.linkRequired(ctx, p, LinkReasonReverify, fmt.Sprintf(
			"your groups were last confirmed by the identity provider %s ago and could not be re-checked: open the link to sign in again, then click again", age))
	case errors.As(err, &refused):
		if refused.markErr != nil {
			return link, fmt.Errorf("oidc: %s: %w", refused.reason, refused.markErr)
		}
		if refused.binding {
			return link, l.linkRequired(ctx, p, LinkReasonStale, bindingChangedMessage)
		}
		return link, l.linkRequired(ctx, p, LinkReasonStale, fmt.Sprintf(
			"the identity provider no longer confirms your account link (%s): open the link to sign in again, then click again", refused.reason))
	}
	// The IdP is unavailable (or the store failed): the vote is refused for
	// now and nothing was changed.
	return link, err
}

// How a refresh was triggered (refreshGroups, the refresh counters).
const (
	refreshByClick = "click"
	refreshBySweep = "sweep"
)

// errNoRefreshToken: the link holds no refresh token, or this Linker keeps
// none (no TokenKey); only a new sign-in can confirm the groups.
var errNoRefreshToken = errors.New("oidc: no refresh token is kept for this link")

// errRefreshTokenUnreadable: the sealed refresh token does not open (the
// token key changed, or the stored bytes were altered).
var errRefreshTokenUnreadable = errors.New("oidc: the stored refresh token cannot be opened")

// refreshRefusedError: the IdP refused the refresh (user disabled, consent
// or token revoked) and the link was marked stale, unless markErr says
// that could not be stored.
type refreshRefusedError struct {
	reason  string
	markErr error
	// binding: not the IdP but the chat platform refused, its record of
	// the account no longer matching the linked identity (recheckBinding).
	binding bool
}

func (e *refreshRefusedError) Error() string {
	switch {
	case e.markErr != nil:
		return "oidc: " + e.reason + ": " + e.markErr.Error()
	case e.binding:
		return "oidc: " + e.reason
	}
	return "oidc: the identity provider refused the refresh: " + e.reason
}

// refreshGroups re-reads the groups of link at the IdP with its refresh
// token and stores what the IdP confirmed (RefreshLink). It is the one
// refresh both a click (Resolve) and the background sweep (Sweep) use; the
// caller holds p's lock (lockUser). It fails with errNoRefreshToken,
// errRefreshTokenUnreadable, a *refreshRefusedError (the link was marked
// stale), an error wrapping ErrIdPUnavailable (nothing changed), or a
// storage error. trigger is refreshByClick or refreshBySweep.
func (l *Linker) refreshGroups(ctx context.Context, p PlatformUser, link storage.IdentityLink, trigger string) (storage.IdentityLink, error) {
	if l.sealer == nil || len(link.RefreshToken) == 0 {
		return link, errNoRefreshToken
	}
	rt, err := l.sealer.open(link.RefreshToken, link)
	if err != nil {
		l.counters.refreshFailed(RefreshFailureTokenUnreadable)
		l.log.Warn("stored refresh token cannot be opened; the approver must sign in again", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "err", err)
		return link, errRefreshTokenUnreadable
	}
	// The chat account first: a refresh spends (rotates) the refresh
	// token, so nothing may fail after it but storing what it returned.
	if err := l.recheckBinding(ctx, p, link, trigger); err != nil {
		return link, err
	}
	res, err := l.idp.refresh(ctx, rt, link.Subject)
	var refused *idpRefusal
	switch {
	case errors.As(err, &refused):
		l.counters.refreshFailed(RefreshFailureRefused)
		l.log.Info("identity provider refused to refresh a link; marking it stale", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "subject", link.Subject, "reason", refused.reason, "trigger", trigger)
		if merr := l.opts.Links.MarkLinkStale(ctx, p.Platform, p.Workspace, p.UserID, refused.reason); merr != nil {
			return link, &refreshRefusedError{reason: refused.reason, markErr: merr}
		}
		l.counters.markStale(StaleRefreshRefused)
		return link, &refreshRefusedError{reason: refused.reason}
	case err != nil:
		if errors.Is(err, ErrIdPUnavailable) {
			l.counters.refreshFailed(RefreshFailureUnavailable)
		}
		l.log.Warn("refreshing a link at the identity provider failed; nothing was changed", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "trigger", trigger, "err", err)
		return link, err
	}
	updated := link
	updated.Groups = res.claims.Groups
	updated.Email, updated.EmailUnverified = l.keptEmail(link, res.claims)
	if res.claims.Name != "" {
		updated.Name = res.claims.Name
	}
	if res.claims.PreferredUsername != "" {
		updated.PreferredUsername = res.claims.PreferredUsername
	}
	if len(res.claims.PersonClaims) > 0 {
		updated.PersonClaims = res.claims.PersonClaims
	}
	updated.VerifiedAt = l.clock.Now().UTC()
	if res.refreshToken != "" && res.refreshToken != rt {
		if updated.RefreshToken, err = l.sealer.seal(res.refreshToken, updated); err != nil {
			return link, err
		}
	}
	if err := l.opts.Links.RefreshLink(ctx, updated); err != nil {
		return link, fmt.Errorf("oidc: store refreshed link of %s: %w", p, err)
	}
	l.counters.refreshed(trigger)
	l.log.Info("link refreshed at the identity provider", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "subject", link.Subject, "groups", updated.Groups, "rotated", res.refreshToken != "" && res.refreshToken != rt, "trigger", trigger)
	return updated, nil
}

// Cleanup removes sign-in attempts that have expired and returns how many.
func (l *Linker) Cleanup(ctx context.Context) (int, error) {
	var n int
	now := l.clock.Now().UTC()
	err := l.opts.Store.Update(ctx, func(tx storage.Tx) error {
		var err error
		n, err = tx.DeleteExpiredLinkAttempts(now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("oidc: remove expired sign-in attempts: %w", err)
	}
	if n > 0 {
		l.log.Debug("expired sign-in attempts removed", "count", n)
	}
	return n, nil
}

// RunCleanup calls Cleanup every CleanupInterval (on the Linker's clock)
// until ctx ends; failures are logged and retried at the next tick.
func (l *Linker) RunCleanup(ctx context.Context) {
	for {
		if _, err := l.Cleanup(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("cleaning up sign-in attempts failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-l.clock.After(l.opts.CleanupInterval):
		}
	}
}

// Mux is where handlers are mounted: an *http.ServeMux or signoff's front
// door.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Register mounts GET and POST /link/start (the confirmation page and its
// Continue) and GET /link/callback on mux.
func (l *Linker) Register(mux Mux) {
	mux.HandleFunc("GET "+StartPath, l.handleConfirm)
	mux.HandleFunc("POST "+StartPath, l.handleStart)
	mux.HandleFunc("GET "+CallbackPath, l.handleCallback)
}

// attemptRef names an attempt in logs without revealing its id.
func attemptRef(id string) string {
	sum := sha256.Sum256([]byte("signoff-attempt-ref\x00" + id))
	return hex.EncodeToString(sum[:6])
}
