// Package config loads, validates and summarizes signoff's configuration,
// and turns it into the rule set of package policy.
//
// Configuration is data: Load reads a YAML file and SIGNOFF_* environment
// variables into a plain Config, refusing unknown keys and resolving every
// *_file secret; Validate then reports every problem at once, each prefixed
// by its key; Policy builds the policy.Policy the server enforces; Summary
// renders a one-screen description for `signoff config check`.
//
// # Sources and precedence
//
// For every key, the first of these that sets it wins: the environment
// variable, the file, the built-in default (see Default).
//
// # Environment overrides
//
// Every fixed key (everything outside the lists `requesters` and
// `dev.approvers` and the map `actions`) can be overridden by an environment
// variable named SIGNOFF_ followed by the key path in upper case with dots
// replaced by underscores: listen → SIGNOFF_LISTEN, storage.path →
// SIGNOFF_STORAGE_PATH, slack.signing_secret_file →
// SIGNOFF_SLACK_SIGNING_SECRET_FILE. Lists of strings (idp.scopes,
// teams.tenant_ids, auditors.groups) take a comma-separated value; durations
// take Go duration syntax ("90s", "1h"). A variable set to the empty string
// is ignored. EnvKeys lists every key that accepts an override.
//
// Per-action keys (everything under actions.<name>) and the entries of
// `requesters` and `dev.approvers` come from the file only.
//
// # Secrets
//
// Every secret key has a *_file twin (slack.signing_secret and
// slack.signing_secret_file, …). Load reads the file, trims trailing
// whitespace (including the final newline) and stores the content in the
// plain key as a Secret, which prints as [redacted]; setting both twins is an
// error. Relative *_file paths are relative to the process's working
// directory, like storage.path.
//
// # Keys
//
// Keys are written in lower case. Top-level and section keys are matched
// case-insensitively (viper folds them); keys inside actions — including
// action, parameter and claim names — are case-sensitive, so that parameter
// and claim names keep the case requests and tokens use.
package config

import (
	"io"
	"log/slog"
	"strings"
	"time"
)

// Defaults of keys that are not required.
const (
	// DefaultListen is the address the server listens on.
	DefaultListen = "127.0.0.1:8080"
	// DefaultStoragePath is where the bbolt database lives.
	DefaultStoragePath = "./signoff-data/signoff.db"
	// DefaultPersonClaim is the requester claim naming the person behind a
	// CI request when a requesters entry sets no person_claim.
	DefaultPersonClaim = "sub"
	// DefaultIdPGroupsClaim is the IdP claim holding an approver's groups.
	DefaultIdPGroupsClaim = "groups"
	// DefaultLinkMaxAge is how long an approver's chat-account link lasts.
	DefaultLinkMaxAge = 720 * time.Hour
	// DefaultGroupsMaxAge is how old an approver's verified groups may be.
	DefaultGroupsMaxAge = 24 * time.Hour
	// DefaultCheckpointEvery is how many audit records lie between two
	// signed checkpoints.
	DefaultCheckpointEvery = 1000
	// DefaultActionTTL is how long a request waits for a decision.
	DefaultActionTTL = time.Hour
	// MaxActionTTL is the longest ttl an action may declare.
	MaxActionTTL = 30 * 24 * time.Hour
	// DefaultMinApprovals is how many approvals an action needs.
	DefaultMinApprovals = 1
	// DefaultWebhookTimeout bounds one on_approve webhook call.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultLogLevel and DefaultLogFormat configure logging.
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
	// DefaultRequestsPerMinute caps the requests one CI identity creates
	// in a minute: a pipeline asks for one approval per gated step.
	DefaultRequestsPerMinute = 60
	// DefaultPendingPerRequester caps the requests one CI identity has
	// waiting at once.
	DefaultPendingPerRequester = 20
	// DefaultClicksPerMinute caps one chat account's clicks and commands
	// in a minute: a person clicks a few times.
	DefaultClicksPerMinute = 30
)

// Storage drivers.
const (
	// DriverBolt keeps everything in one bbolt file (one process).
	DriverBolt = "bolt"
	// DriverPostgres uses a PostgreSQL database shared by several replicas.
	DriverPostgres = "postgres"
)

// DefaultIdPScopes are requested from the IdP when idp.scopes is not set.
// offline_access asks for a refresh token, so that groups can be re-verified
// without the approver signing in again.
var DefaultIdPScopes = []string{"openid", "email", "profile", "groups", "offline_access"}

// Config is everything an operator writes. Its fields mirror the YAML keys
// (named by the mapstructure tags); see config.example.yaml for each key's
// meaning.
type Config struct {
	// Listen is the HTTP listen address, host:port.
	Listen string `mapstructure:"listen"`
	// PublicURL is the externally reachable base URL, used for links in
	// cards and the IdP redirect URI.
	PublicURL string `mapstructure:"public_url"`
	// Storage selects and configures the database.
	Storage StorageConfig `mapstructure:"storage"`
	// Requesters are the OIDC issuers whose tokens CI may present.
	Requesters []RequesterConfig `mapstructure:"requesters"`
	// IdP is where approvers link their chat accounts.
	IdP IdPConfig `mapstructure:"idp"`
	// Auditors may read the audit log and every request.
	Auditors AuditorsConfig `mapstructure:"auditors"`
	// Admins may use the admin API (links, requests, backup).
	Admins AdminsConfig `mapstructure:"admins"`
	// Slack configures the Slack app; empty when Slack is not used.
	Slack SlackConfig `mapstructure:"slack"`
	// Teams configures the Microsoft Teams bot; empty when Teams is not used.
	Teams TeamsConfig `mapstructure:"teams"`
	// Audit configures the audit log's signed checkpoints.
	Audit AuditConfig `mapstructure:"audit"`
	// Limits caps what one requester or one chat account may do in a
	// minute, and how many requests a requester may have pending.
	Limits LimitsConfig `mapstructure:"limits"`
	// SSF configures the Shared Signals receiver (POST /ssf/events); empty
	// when no transmitter pushes security events.
	SSF SSFConfig `mapstructure:"ssf"`
	// Attest configures approval attestations (attest.go).
	Attest AttestConfig `mapstructure:"attest"`
	// Actions are the things CI may ask approval for, by name.
	Actions map[string]ActionConfig `mapstructure:"actions"`
	// Dev configures dev mode (`signoff serve --dev`).
	Dev DevConfig `mapstructure:"dev"`
	// Log configures the process log.
	Log LogConfig `mapstructure:"log"`

	// source names where the config came from (a path), for messages.
	source string
	// fromEnv maps a key to the environment variable that set it.
	fromEnv map[string]string
}

// StorageConfig selects the database.
type StorageConfig struct {
	// Driver is DriverBolt (default) or DriverPostgres.
	Driver string `mapstructure:"driver"`
	// Path is the bbolt file (driver bolt).
	Path string `mapstructure:"path"`
	// DSN is the PostgreSQL connection string (driver postgres); it may
	// hold a password, so it is a Secret.
	DSN Secret `mapstructure:"dsn"`
	// DSNFile is DSN's file twin.
	DSNFile string `mapstructure:"dsn_file"`
}

// RequesterConfig is one trusted CI token issuer.
type RequesterConfig struct {
	// Name is what action requester rules call this issuer (e.g. "github").
	Name string `mapstructure:"name"`
	// Issuer is the issuer URL, which tokens carry as iss.
	Issuer string `mapstructure:"issuer"`
	// Audience is the aud tokens must carry.
	Audience string `mapstructure:"audience"`
	// PersonClaim names the person behind a request (GitHub: actor; GitLab:
	// user_login); DefaultPersonClaim when empty in the file.
	PersonClaim string `mapstructure:"person_claim"`
	// NameClaim, EmailClaim and GroupsClaim optionally name claims holding
	// the person's display name, email and groups.
	NameClaim   string `mapstructure:"name_claim"`
	EmailClaim  string `mapstructure:"email_claim"`
	GroupsClaim string `mapstructure:"groups_claim"`
}

// IdPConfig is the OpenID Connect provider approvers sign in to.
type IdPConfig struct {
	// Issuer is the provider's issuer URL.
	Issuer string `mapstructure:"issuer"`
	// ClientID identifies signoff at the provider.
	ClientID string `mapstructure:"client_id"`
	// ClientSecret authenticates signoff at the provider; optional for a
	// public client (the flow uses PKCE either way).
	ClientSecret Secret `mapstructure:"client_secret"`
	// ClientSecretFile is ClientSecret's file twin.
	ClientSecretFile string `mapstructure:"client_secret_file"`
	// Scopes are requested at sign-in; DefaultIdPScopes when not set.
	Scopes []string `mapstructure:"scopes"`
	// GroupsClaim names the claim holding the approver's groups.
	GroupsClaim string `mapstructure:"groups_claim"`
	// LinkMaxAge is how long a chat-account link lasts.
	LinkMaxAge time.Duration `mapstructure:"link_max_age"`
	// GroupsMaxAge is how old verified groups may be when a vote counts.
	GroupsMaxAge time.Duration `mapstructure:"groups_max_age"`
	// TokenEncryptionKey encrypts stored refresh tokens.
	TokenEncryptionKey Secret `mapstructure:"token_encryption_key"`
	// TokenEncryptionKeyFile is TokenEncryptionKey's file twin.
	TokenEncryptionKeyFile string `mapstructure:"token_encryption_key_file"`
	// LinkMatch is how signoff proves that whoever completes a sign-in
	// link owns the chat account it was sent to: "email" (the default:
	// the chat platform's email, or Teams' Entra object id, must match the
	// IdP's verified answer) or "none" (no proof; see the README).
	LinkMatch string `mapstructure:"link_match"`
	// EmailVerified says which IdP emails may prove a binding:
	// "required" (the default: the ID token says email_verified: true, or
	// Microsoft Entra ID's xms_edov: true) or "assumed" (also an email
	// the IdP marks neither way; for IdPs that never send the claim and
	// where no user can set their own email).
	EmailVerified string `mapstructure:"email_verified"`
	// PersonClaims names approver ID-token claims that may hold a
	// requester's CI handle (a GitHub login in a custom attribute), for the
	// self-approval check; DefaultIdPPersonClaims when not set.
	PersonClaims []string `mapstructure:"person_claims"`
	// CLIClientID is the public client (no secret; loopback redirect
	// http://127.0.0.1/callback at any port, RFC 8252) registered at the
	// provider for `signoff login`. When set, signoff accepts the
	// provider's ID tokens issued to it on admin and auditor endpoints.
	CLIClientID string `mapstructure:"cli_client_id"`
}

// Values of idp.email_verified.
const (
	EmailVerifiedRequired = "required"
	EmailVerifiedAssumed  = "assumed"
)

// Link match modes (idp.link_match).
const (
	LinkMatchEmail = "email"
	LinkMatchNone  = "none"
)

// DefaultIdPPersonClaims is idp.person_claims when not set.
var DefaultIdPPersonClaims = []string{"preferred_username"}

// Configured reports whether the IdP section was filled in (defaults alone
// do not count).
func (c IdPConfig) Configured() bool {
	return c.Issuer != "" || c.ClientID != "" || c.ClientSecret != "" || c.ClientSecretFile != "" ||
		c.TokenEncryptionKey != "" || c.TokenEncryptionKeyFile != ""
}

// AuditorsConfig names who may read the audit log.
type AuditorsConfig struct {
	// Groups are IdP groups whose members are auditors.
	Groups []string `mapstructure:"groups"`
}

// AdminsConfig names who may use the admin API: list and revoke links,
// list and cancel requests, take a backup. Matched like auditors.groups,
// against the groups claim of a bearer token from a trusted issuer.
type AdminsConfig struct {
	// Groups are IdP groups whose members are admins. Empty: nobody is.
	Groups []string `mapstructure:"groups"`
}

// SlackConfig is the Slack app.
type SlackConfig struct {
	// BotToken (xoxb-…) calls the Web API.
	BotToken Secret `mapstructure:"bot_token"`
	// BotTokenFile is BotToken's file twin.
	BotTokenFile string `mapstructure:"bot_token_file"`
	// SigningSecret verifies HTTP callbacks.
	SigningSecret Secret `mapstructure:"signing_secret"`
	// SigningSecretFile is SigningSecret's file twin.
	SigningSecretFile string `mapstructure:"signing_secret_file"`
	// AppToken (xapp-…) enables Socket Mode instead of HTTP callbacks.
	AppToken Secret `mapstructure:"app_token"`
	// AppTokenFile is AppToken's file twin.
	AppTokenFile string `mapstructure:"app_token_file"`
	// TeamID is the workspace (T…) whose callbacks are accepted.
	TeamID string `mapstructure:"team_id"`
	// EnterpriseID is the Enterprise Grid organization (E…), if any.
	EnterpriseID string `mapstructure:"enterprise_id"`
	// APIURL overrides the Web API base URL (tests); it ends with "/".
	APIURL string `mapstructure:"api_url"`
}

// Configured reports whether any Slack key is set.
func (c SlackConfig) Configured() bool {
	return c.BotToken != "" || c.BotTokenFile != "" || c.SigningSecret != "" || c.SigningSecretFile != "" ||
		c.AppToken != "" || c.AppTokenFile != "" || c.TeamID != "" || c.EnterpriseID != "" || c.APIURL != ""
}

// TeamsConfig is the Microsoft Teams (Bot Framework) bot.
type TeamsConfig struct {
	// AppID is the bot's Microsoft app id (the audience of Bot Framework
	// tokens).
	AppID string `mapstructure:"app_id"`
	// AppPassword is the bot's client secret.
	AppPassword Secret `mapstructure:"app_password"`
	// AppPasswordFile is AppPassword's file twin.
	AppPasswordFile string `mapstructure:"app_password_file"`
	// TenantIDs are the Microsoft Entra tenants whose activities are
	// accepted.
	TenantIDs []string `mapstructure:"tenant_ids"`
	// OpenIDMetadataURL overrides where Bot Framework signing keys come from.
	OpenIDMetadataURL string `mapstructure:"openid_metadata_url"`
	// TokenURL overrides where the bot gets its own access tokens.
	TokenURL string `mapstructure:"token_url"`
	// ServiceURL is used for conversations the bot has not yet seen an
	// activity from.
	ServiceURL string `mapstructure:"service_url"`
	// ChannelService selects a sovereign cloud (e.g.
	// https://botframework.azure.us); empty for the public cloud.
	ChannelService string `mapstructure:"channel_service"`
	// ServiceURLHosts are the hosts an activity's serviceUrl may name
	// (the bot sends its token there); activities naming another host are
	// refused. Entries are hosts matched exactly or "*." and a domain;
	// default DefaultTeamsServiceURLHosts. A list given replaces the
	// default.
	ServiceURLHosts []string `mapstructure:"service_url_hosts"`
}

// DefaultTeamsServiceURLHosts is the default of teams.service_url_hosts:
// the Bot Connector hosts of Microsoft's public cloud and of the US
// Government clouds (GCC, GCC High, DoD), as Microsoft's Teams SDK lists
// them in "Service URL Validation"
// (https://microsoft.github.io/teams-sdk/csharp/essentials/app-configuration/service-url-validation).
// It equals teamsbot.DefaultServiceURLHosts.
var DefaultTeamsServiceURLHosts = []string{
	"smba.trafficmanager.net",
	"smba.onyx.prod.teams.trafficmanager.net",
	"smba.infra.gcc.teams.microsoft.com",
	"smba.infra.gov.teams.microsoft.us",
	"smba.infra.dod.teams.microsoft.us",
}

// Configured reports whether any Teams key is set.
func (c TeamsConfig) Configured() bool {
	return c.AppID != "" || c.AppPassword != "" || c.AppPasswordFile != "" || len(c.TenantIDs) > 0 ||
		c.OpenIDMetadataURL != "" || c.TokenURL != "" || c.ServiceURL != "" || c.ChannelService != ""
}

// AuditConfig configures signed checkpoints of the audit log.
type AuditConfig struct {
	// SigningKey is the Ed25519 private key (as `signoff audit keygen`
	// writes it); checkpoints are unsigned when it is empty.
	SigningKey Secret `mapstructure:"signing_key"`
	// SigningKeyFile is SigningKey's file twin.
	SigningKeyFile string `mapstructure:"signing_key_file"`
	// CheckpointEvery is how many records lie between two checkpoints.
	CheckpointEvery int `mapstructure:"checkpoint_every"`
	// Publish names the witnesses every signed checkpoint is sent to
	// (publish.go); empty when none.
	Publish PublishConfig `mapstructure:"publish"`
}

// SSFConfig is the Shared Signals receiver: the transmitter (the company
// IdP) whose Security Event Tokens may make approvers' links stale. Issuer,
// JWKSURL and Audience are required together.
type SSFConfig struct {
	// Issuer is the transmitter's issuer: a SET's iss must equal it.
	Issuer string `mapstructure:"issuer"`
	// JWKSURL is where the transmitter publishes its signing keys.
	JWKSURL string `mapstructure:"jwks_url"`
	// Audience must be one of a SET's aud values.
	Audience string `mapstructure:"audience"`
	// BearerToken, when set, must come with every push as
	// "Authorization: Bearer <token>" (the transmitter's stream
	// configuration sets the header); other pushes are refused with
	// authentication_failed before their SET is looked at.
	BearerToken Secret `mapstructure:"bearer_token"`
	// BearerTokenFile is BearerToken's file twin.
	BearerTokenFile string `mapstructure:"bearer_token_file"`
}

// Configured reports whether any ssf key is set.
func (c SSFConfig) Configured() bool {
	return c.Issuer != "" || c.JWKSURL != "" || c.Audience != "" || c.BearerToken != "" || c.BearerTokenFile != ""
}

// LimitsConfig caps what one caller may do; beyond a limit the API answers
// 429 rate_limited with Retry-After, and a chat click or command is told
// privately when to try again. The defaults are far above what an honest
// CI run or approver does; they stop runaway loops and floods.
type LimitsConfig struct {
	// RequestsPerMinute caps POST /v1/requests per requester identity
	// (issuer and subject of the CI token); DefaultRequestsPerMinute.
	RequestsPerMinute int `mapstructure:"requests_per_minute"`
	// PendingPerRequester caps the requests one requester identity may
	// have pending at once; DefaultPendingPerRequester.
	PendingPerRequester int `mapstructure:"pending_per_requester"`
	// ClicksPerMinute caps the card clicks and chat commands per chat
	// account (platform, workspace or tenant, user);
	// DefaultClicksPerMinute.
	ClicksPerMinute int `mapstructure:"clicks_per_minute"`
}

// ActionConfig is one kind of thing CI may ask approval for.
type ActionConfig struct {
	// Description says what the action does, for cards and summaries.
	Description string `mapstructure:"description"`
	// Requesters are the rules a request must match one of.
	Requesters []RequesterRuleConfig `mapstructure:"requesters"`
	// Params declares the accepted parameters, by name.
	Params map[string]ParamConfig `mapstructure:"params"`
	// Approvers says who may approve and how many must.
	Approvers ApproversConfig `mapstructure:"approvers"`
	// TTL is how long a request waits; DefaultActionTTL when not set.
	TTL time.Duration `mapstructure:"ttl"`
	// Notify names where requests are announced.
	Notify NotifyConfig `mapstructure:"notify"`
	// OnApprove is what runs once a request is approved.
	OnApprove OnApproveConfig `mapstructure:"on_approve"`
	// StepUp, when set, demands a recent sign-in before a vote counts.
	StepUp *StepUpConfig `mapstructure:"step_up"`
	// RequireApproveReason and RequireDenyReason make approvers explain.
	RequireApproveReason bool `mapstructure:"require_approve_reason"`
	RequireDenyReason    bool `mapstructure:"require_deny_reason"`
	// Attestation configures the attestations of the action's approvals
	// (attest.go).
	Attestation AttestationConfig `mapstructure:"attestation"`
	// Windows, when set, are the only times the action may be requested
	// and run; Freeze are times it may not (windows.go).
	Windows []WindowConfig `mapstructure:"windows"`
	Freeze  []FreezeConfig `mapstructure:"freeze"`
	// Remind, when set, reminds the card's conversations of a pending
	// request (remind.go).
	Remind *RemindConfig `mapstructure:"remind"`
	// Escalate, when set, posts the card to more conversations once a
	// request has waited (remind.go).
	Escalate *EscalateConfig `mapstructure:"escalate"`
	// BreakGlass, when set, lets some requesters have a request approved
	// at once, reviewed afterwards (breakglass.go).
	BreakGlass *BreakGlassConfig `mapstructure:"break_glass"`
}

// RequesterRuleConfig matches a verified CI token.
type RequesterRuleConfig struct {
	// Issuer is the name of a requesters entry.
	Issuer string `mapstructure:"issuer"`
	// Claims maps claim names to globs (* matches any run of characters);
	// all must match.
	Claims map[string]string `mapstructure:"claims"`
}

// ParamConfig declares one request parameter.
type ParamConfig struct {
	// Required parameters must be present.
	Required bool `mapstructure:"required"`
	// Pattern is a regular expression the whole value must match (it is
	// anchored whether or not it says ^…$).
	Pattern string `mapstructure:"pattern"`
	// MaxLength caps the value in bytes; 0 means policy.DefaultMaxParamLength.
	MaxLength int `mapstructure:"max_length"`
}

// ApproversConfig says who may approve and how many must.
type ApproversConfig struct {
	// Groups are IdP groups; membership in any makes a person eligible.
	Groups []string `mapstructure:"groups"`
	// Users are IdP subjects or email addresses eligible by name.
	Users []string `mapstructure:"users"`
	// MinApprovals is how many distinct approvers must approve;
	// DefaultMinApprovals when not set.
	MinApprovals int `mapstructure:"min_approvals"`
	// AllowSelfApproval lets the requester approve their own request.
	AllowSelfApproval bool `mapstructure:"allow_self_approval"`
	// Require are rules that must all hold as well as MinApprovals
	// (windows.go).
	Require []RequireConfig `mapstructure:"require"`
}

// NotifyConfig names where requests are announced.
type NotifyConfig struct {
	// Slack channel ids.
	Slack []string `mapstructure:"slack"`
	// Teams conversation ids.
	Teams []string `mapstructure:"teams"`
	// Requester, unless false, tells the requester the decision in a
	// message to their linked chat accounts (remind.go); default true.
	Requester *bool `mapstructure:"requester"`
}

// OnApproveConfig is what runs once a request is approved.
type OnApproveConfig struct {
	// Webhook, when configured, receives the approved request.
	//
	// It is a value, not a pointer, on purpose: fmt does not call the
	// methods of values behind a pointer nested in what it prints with a
	// mismatched verb (%s of a struct), so a Secret behind a pointer could
	// be printed in clear. No Secret may be reachable through a pointer.
	Webhook WebhookConfig `mapstructure:"webhook"`
}

// WebhookConfig is an HTTP endpoint called on approval. The zero value
// means no webhook.
type WebhookConfig struct {
	// URL is the endpoint (http or https).
	URL string `mapstructure:"url"`
	// Secret signs the call so the receiver can verify it.
	Secret Secret `mapstructure:"secret"`
	// SecretFile is Secret's file twin.
	SecretFile string `mapstructure:"secret_file"`
	// Timeout bounds one call; DefaultWebhookTimeout when not set.
	Timeout time.Duration `mapstructure:"timeout"`
}

// Configured reports whether any webhook key is set.
func (w WebhookConfig) Configured() bool {
	return w.URL != "" || w.Secret != "" || w.SecretFile != "" || w.Timeout != 0
}

// StepUpConfig demands a recent interactive sign-in before a vote counts.
type StepUpConfig struct {
	// MaxAge is how long ago the sign-in may have been.
	MaxAge time.Duration `mapstructure:"max_age"`
	// ACRValues are requested from the IdP at the step-up sign-in.
	ACRValues []string `mapstructure:"acr_values"`
	// RequireMFA demands a multi-factor sign-in (amr claim): "mfa", or
	// methods of two different kinds (see policy.IsMultiFactor).
	RequireMFA bool `mapstructure:"require_mfa"`
	// MFAMethods are amr values accepted as multi-factor on their own,
	// for an IdP that reports one strong method (e.g. [hwk]).
	MFAMethods []string `mapstructure:"mfa_methods"`
}

// DevConfig configures dev mode.
type DevConfig struct {
	// Approvers are the people the dev console lets you vote as.
	Approvers []DevApprover `mapstructure:"approvers"`
}

// DevApprover is a made-up approver for dev mode.
type DevApprover struct {
	// Name is who the dev console votes as (the identity's subject).
	Name string `mapstructure:"name"`
	// Email is the identity's email address.
	Email string `mapstructure:"email"`
	// Groups stand in for the IdP groups the identity would hold.
	Groups []string `mapstructure:"groups"`
}

// LogConfig configures the process log.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level"`
	// Format is text or json.
	Format string `mapstructure:"format"`
}

// SlogLevel returns Level as a slog.Level (info when unrecognized).
func (c LogConfig) SlogLevel() slog.Level {
	switch strings.ToLower(c.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Handler returns a slog handler writing to w in the configured format and
// level.
func (c LogConfig) Handler(w io.Writer) slog.Handler {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if strings.ToLower(c.Format) == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// Default returns the configuration that applies when neither file nor
// environment sets anything: the defaults of every fixed key. Per-action
// defaults (DefaultActionTTL, DefaultMinApprovals, DefaultWebhookTimeout)
// and DefaultPersonClaim are applied by Load to each entry.
func Default() *Config {
	return &Config{
		Listen:  DefaultListen,
		Storage: StorageConfig{Driver: DriverBolt, Path: DefaultStoragePath},
		IdP: IdPConfig{
			Scopes:        append([]string(nil), DefaultIdPScopes...),
			GroupsClaim:   DefaultIdPGroupsClaim,
			LinkMaxAge:    DefaultLinkMaxAge,
			GroupsMaxAge:  DefaultGroupsMaxAge,
			LinkMatch:     LinkMatchEmail,
			EmailVerified: EmailVerifiedRequired,
			PersonClaims:  append([]string(nil), DefaultIdPPersonClaims...),
		},
		Audit: AuditConfig{CheckpointEvery: DefaultCheckpointEvery},
		Limits: LimitsConfig{
			RequestsPerMinute:   DefaultRequestsPerMinute,
			PendingPerRequester: DefaultPendingPerRequester,
			ClicksPerMinute:     DefaultClicksPerMinute,
		},
		Log:    LogConfig{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Teams:  TeamsConfig{ServiceURLHosts: append([]string(nil), DefaultTeamsServiceURLHosts...)},
		Attest: AttestConfig{TTL: DefaultAttestTTL},
	}
}

// Source returns the path the configuration was loaded from ("" when it
// came from defaults and environment only, or was built in code).
func (c *Config) Source() string { return c.source }

// EnvSource returns the environment variable that set key (e.g.
// "SIGNOFF_LISTEN" for "listen"), or "" when the key did not come from the
// environment.
func (c *Config) EnvSource(key string) string { return c.fromEnv[key] }
