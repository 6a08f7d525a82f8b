package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/policy"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	// Key is the config key path, e.g. "actions.deploy-prod.ttl" or
	// "requesters[1].issuer"; empty for a problem with the whole file.
	Key string
	// Message says what is wrong and, where it helps, what to do.
	Message string
}

// String returns "key: message".
func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// ValidationError lists every problem found, sorted by key.
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems.
type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// sorted returns the problems sorted by key, stable within a key.
func (ps problems) sorted() []Problem {
	out := slices.Clone([]Problem(ps))
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// err returns a *ValidationError, or nil when there are no problems.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps.sorted()}
}

// namePattern is what action and requester names must match.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// paramNamePattern is what parameter names must match (they are written as
// --param name=value on the command line).
var paramNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// Validate checks the configuration and returns every problem at once as a
// *ValidationError, or nil. It does no I/O: secret files were read by Load.
func (c *Config) Validate() error {
	var ps problems
	c.validateServer(&ps)
	c.validatePolicy(&ps)
	return ps.err()
}

func (c *Config) validateServer(ps *problems) {
	checkListen(ps, "listen", c.Listen)
	if c.PublicURL != "" {
		checkURL(ps, "public_url", c.PublicURL, urlRule{httpsUnlessLoopback: true, noQuery: true, showValue: true})
	} else if c.IdP.Configured() {
		ps.add("public_url", "required when idp is configured: the IdP redirects approvers back to public_url + /link/callback")
	}

	switch c.Storage.Driver {
	case DriverBolt:
		if c.Storage.Path == "" {
			ps.add("storage.path", "required with driver %q: the bbolt database file", DriverBolt)
		}
		if c.Storage.DSN != "" || c.Storage.DSNFile != "" {
			ps.add("storage.driver", "is %q but a PostgreSQL DSN is set; set storage.driver: postgres to use it, or remove the DSN", DriverBolt)
		}
	case DriverPostgres:
		dsn := string(c.Storage.DSN)
		switch {
		case dsn == "" && c.Storage.DSNFile == "":
			ps.add("storage.dsn", "required with driver %q: set storage.dsn_file (or storage.dsn)", DriverPostgres)
		case dsn != "" && !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") && !strings.Contains(dsn, "="):
			// Never quoted: it may be the password alone.
			key := "storage.dsn"
			if c.Storage.DSNFile != "" {
				key = "storage.dsn_file"
			}
			ps.add(key, "is not a PostgreSQL connection string (neither a postgres:// URL nor keyword=value pairs); a file holding only the password is not enough: write the whole string, e.g. host=db user=signoff password=… dbname=signoff")
		}
	case "":
		ps.add("storage.driver", "required: %q or %q", DriverBolt, DriverPostgres)
	default:
		ps.add("storage.driver", "%q is not a storage driver; use %q or %q", c.Storage.Driver, DriverBolt, DriverPostgres)
	}

	c.validateIdP(ps)
	c.validateSlack(ps)
	c.validateTeams(ps)
	c.validateSSF(ps)
	c.validateAttest(ps)

	if c.Audit.CheckpointEvery < 1 {
		ps.add("audit.checkpoint_every", "must be >= 1, got %d", c.Audit.CheckpointEvery)
	}
	if c.Audit.SigningKey.IsSet() {
		if _, err := audit.ParsePrivateKeyPEM([]byte(c.Audit.SigningKey.Reveal())); err != nil {
			ps.add("audit.signing_key", "%v", err)
		}
	}
	c.validatePublish(ps)
	for _, l := range []struct {
		key      string
		val, def int
	}{
		{"limits.requests_per_minute", c.Limits.RequestsPerMinute, DefaultRequestsPerMinute},
		{"limits.pending_per_requester", c.Limits.PendingPerRequester, DefaultPendingPerRequester},
		{"limits.clicks_per_minute", c.Limits.ClicksPerMinute, DefaultClicksPerMinute},
	} {
		if l.val <= 0 {
			ps.add(l.key, "must be > 0, got %d (leave it out for the default, %d)", l.val, l.def)
		}
	}

	devNames := map[string]int{}
	for i, a := range c.Dev.Approvers {
		key := fmt.Sprintf("dev.approvers[%d]", i)
		switch {
		case strings.TrimSpace(a.Name) == "":
			ps.add(key+".name", "required")
		default:
			if j, dup := devNames[a.Name]; dup {
				ps.add(key+".name", "%q is also dev.approvers[%d]; names must be unique", a.Name, j)
			}
			devNames[a.Name] = i
		}
		if a.Email != "" && !strings.Contains(a.Email, "@") {
			ps.add(key+".email", "%q is not an email address", a.Email)
		}
		checkNonEmpty(ps, key+".groups", a.Groups)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		ps.add("log.level", "%q is not a log level; use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		ps.add("log.format", "%q is not a log format; use text or json", c.Log.Format)
	}
}

func (c *Config) validateIdP(ps *problems) {
	idp := c.IdP
	c.validateCLIClient(ps)
	if !idp.Configured() {
		return
	}
	if idp.Issuer == "" {
		ps.add("idp.issuer", "required when the idp section is used: the provider's issuer URL")
	} else {
		checkURL(ps, "idp.issuer", idp.Issuer, urlRule{httpsUnlessLoopback: true, noQuery: true, showValue: true})
	}
	if idp.ClientID == "" {
		ps.add("idp.client_id", "required when the idp section is used: the client id registered at the provider")
	}
	if !slices.Contains(idp.Scopes, "openid") {
		ps.add("idp.scopes", "must include \"openid\"")
	}
	checkNonEmpty(ps, "idp.scopes", idp.Scopes)
	if idp.GroupsClaim == "" {
		ps.add("idp.groups_claim", "required: the ID token claim that lists the approver's groups")
	}
	if idp.LinkMaxAge <= 0 {
		ps.add("idp.link_max_age", "must be > 0, got %s", FormatDuration(idp.LinkMaxAge))
	}
	if idp.GroupsMaxAge <= 0 {
		ps.add("idp.groups_max_age", "must be > 0, got %s", FormatDuration(idp.GroupsMaxAge))
	}
	if idp.TokenEncryptionKey == "" && slices.Contains(idp.Scopes, "offline_access") {
		ps.add("idp.token_encryption_key", "required when idp.scopes includes offline_access: refresh tokens are stored encrypted; set idp.token_encryption_key_file")
	}
	if idp.EmailVerified != EmailVerifiedRequired && idp.EmailVerified != EmailVerifiedAssumed {
		ps.add("idp.email_verified", "must be %q (the default: only an email the IdP marks verified proves whose chat account it is) or %q, got %q", EmailVerifiedRequired, EmailVerifiedAssumed, idp.EmailVerified)
	}
	if idp.LinkMatch != LinkMatchEmail && idp.LinkMatch != LinkMatchNone {
		ps.add("idp.link_match", "must be %q (the default: a chat account links only to the identity whose verified email matches the chat platform's) or %q, got %q", LinkMatchEmail, LinkMatchNone, idp.LinkMatch)
	}
	for i, c := range idp.PersonClaims {
		if strings.TrimSpace(c) == "" {
			ps.add(fmt.Sprintf("idp.person_claims[%d]", i), "is empty: name an ID token claim, or remove the entry")
		}
	}
	if idp.TokenEncryptionKey != "" && len(idp.TokenEncryptionKey) < 32 {
		ps.add("idp.token_encryption_key", "is too short (%d characters); use at least 32 random bytes", len(idp.TokenEncryptionKey))
	}
}

var (
	slackTeamID       = regexp.MustCompile(`^T[A-Z0-9]+$`)
	slackEnterpriseID = regexp.MustCompile(`^E[A-Z0-9]+$`)
)

func (c *Config) validateSlack(ps *problems) {
	s := c.Slack
	if !s.Configured() {
		return
	}
	if s.BotToken == "" {
		ps.add("slack.bot_token", "required when the slack section is used: set slack.bot_token_file (the xoxb-… token)")
	} else if strings.HasPrefix(s.BotToken.Reveal(), "xapp-") {
		ps.add("slack.bot_token", "holds an app-level token (xapp-…); that belongs in slack.app_token, the bot token starts with xoxb-")
	}
	if s.AppToken != "" && strings.HasPrefix(s.AppToken.Reveal(), "xoxb-") {
		ps.add("slack.app_token", "holds a bot token (xoxb-…); that belongs in slack.bot_token, the app-level token starts with xapp-")
	}
	if s.SigningSecret == "" && s.AppToken == "" {
		ps.add("slack.signing_secret", "set slack.signing_secret_file (HTTP callbacks) or slack.app_token_file (Socket Mode); without either no click can be verified")
	}
	if s.TeamID == "" && s.EnterpriseID == "" {
		ps.add("slack.team_id", "required: callbacks from workspaces other than this one are refused")
	}
	if s.TeamID != "" && !slackTeamID.MatchString(s.TeamID) {
		ps.add("slack.team_id", "%q is not a Slack team id (T followed by capitals and digits, e.g. T0123ABCD)", s.TeamID)
	}
	if s.EnterpriseID != "" && !slackEnterpriseID.MatchString(s.EnterpriseID) {
		ps.add("slack.enterprise_id", "%q is not a Slack enterprise id (E followed by capitals and digits)", s.EnterpriseID)
	}
	if s.APIURL != "" {
		if checkURL(ps, "slack.api_url", s.APIURL, urlRule{httpsUnlessLoopback: true, showValue: true}) && !strings.HasSuffix(s.APIURL, "/") {
			ps.add("slack.api_url", "must end with \"/\" (e.g. https://slack.com/api/)")
		}
	}
}

func (c *Config) validateTeams(ps *problems) {
	t := c.Teams
	if !t.Configured() {
		return
	}
	if t.AppID == "" {
		ps.add("teams.app_id", "required when the teams section is used: the bot's Microsoft app id")
	}
	if t.AppPassword == "" {
		ps.add("teams.app_password", "required when the teams section is used: set teams.app_password_file")
	}
	if len(t.TenantIDs) == 0 {
		ps.add("teams.tenant_ids", "required: activities from tenants not listed here are refused")
	}
	checkNonEmpty(ps, "teams.tenant_ids", t.TenantIDs)
	for _, u := range []struct{ key, val string }{
		{"teams.openid_metadata_url", t.OpenIDMetadataURL},
		{"teams.token_url", t.TokenURL},
		{"teams.service_url", t.ServiceURL},
		{"teams.channel_service", t.ChannelService},
	} {
		if u.val != "" {
			checkURL(ps, u.key, u.val, urlRule{httpsUnlessLoopback: true, showValue: true})
		}
	}
	c.validateTeamsServiceURLHosts(ps)
}

// validateTeamsServiceURLHosts checks teams.service_url_hosts (see package
// internal/hostlist for the match rule) and that teams.service_url names
// one of its hosts: the bot never sends its token to another.
func (c *Config) validateTeamsServiceURLHosts(ps *problems) {
	t := c.Teams
	const key = "teams.service_url_hosts"
	if len(t.ServiceURLHosts) == 0 {
		ps.add(key, "is empty: list the Bot Connector hosts activities may name (leave the key out for the default: %s)", strings.Join(DefaultTeamsServiceURLHosts, ", "))
		return
	}
	bad := false
	for i, h := range t.ServiceURLHosts {
		if err := hostlist.CheckEntry(h); err != nil {
			ps.add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
			bad = true
		}
	}
	if bad || t.ServiceURL == "" {
		return
	}
	hosts, err := hostlist.Parse(t.ServiceURLHosts)
	if err != nil {
		return
	}
	if host, err := hosts.CheckURL(t.ServiceURL); err != nil && host != "" {
		ps.add("teams.service_url", "its host %q is not in %s: add it there, or use a Bot Connector service URL (e.g. https://smba.trafficmanager.net/teams/)", host, key)
	}
}

// validatePolicy checks what Policy builds from: requesters, auditors and
// actions.
func (c *Config) validatePolicy(ps *problems) {
	names := c.validateRequesters(ps)
	checkNonEmpty(ps, "auditors.groups", c.Auditors.Groups)
	checkNonEmpty(ps, "admins.groups", c.Admins.Groups)
	for _, name := range slices.Sorted(maps.Keys(c.Actions)) {
		a := c.Actions[name]
		c.validateAction(ps, name, &a, names)
	}
}

// validateRequesters checks the requesters list and returns the names in
// order.
func (c *Config) validateRequesters(ps *problems) []string {
	var names []string
	byName := map[string]int{}
	byIssuer := map[[2]string]int{}
	for i, r := range c.Requesters {
		key := fmt.Sprintf("requesters[%d]", i)
		switch {
		case r.Name == "":
			ps.add(key+".name", "required: the name action rules use for this issuer (e.g. github)")
		case !namePattern.MatchString(r.Name):
			ps.add(key+".name", "%q must match %s", r.Name, namePattern)
		default:
			if j, dup := byName[r.Name]; dup {
				ps.add(key+".name", "%q is also requesters[%d]; names must be unique", r.Name, j)
			} else {
				byName[r.Name] = i
				names = append(names, r.Name)
			}
		}
		if r.Issuer == "" {
			ps.add(key+".issuer", "required: the issuer URL tokens carry as iss")
		} else {
			checkURL(ps, key+".issuer", r.Issuer, urlRule{httpsUnlessLoopback: true, noQuery: true, showValue: true})
		}
		if r.Audience == "" {
			ps.add(key+".audience", "required: the aud tokens must carry (e.g. signoff), so tokens minted for other services are refused")
		}
		if r.PersonClaim == "" {
			ps.add(key+".person_claim", "required: the claim naming the person behind a request")
		}
		if r.Issuer != "" && r.Audience != "" {
			id := [2]string{r.Issuer, r.Audience}
			if j, dup := byIssuer[id]; dup {
				ps.add(key+".issuer", "requesters[%d] has the same issuer and audience; a token could not tell which entry it belongs to", j)
			} else {
				byIssuer[id] = i
			}
		}
	}
	return names
}

func (c *Config) validateAction(ps *problems, name string, a *ActionConfig, requesters []string) {
	key := "actions." + name
	if !namePattern.MatchString(name) {
		ps.add(key, "action name %q must match %s", name, namePattern)
	}

	if len(a.Requesters) == 0 {
		ps.add(key+".requesters", "no requester rules: nobody could request this action; add e.g. {issuer: %s, claims: {…}}", firstOr(requesters, "github"))
	}
	for i, r := range a.Requesters {
		rk := fmt.Sprintf("%s.requesters[%d]", key, i)
		switch {
		case r.Issuer == "":
			ps.add(rk+".issuer", "required: the name of a requesters entry (configured: %s)", listOrNone(requesters))
		case !slices.Contains(requesters, r.Issuer):
			ps.add(rk+".issuer", "%q is not a configured requester; configured: %s", r.Issuer, listOrNone(requesters))
		}
		if len(r.Claims) == 0 {
			ps.add(rk+".claims", "no claims: this rule would accept every token the issuer mints for this audience (for GitHub or GitLab: any repository); name the claims to match, or write sub: \"*\" to accept any token deliberately")
		}
		for _, ck := range slices.Sorted(maps.Keys(r.Claims)) {
			switch {
			case strings.TrimSpace(ck) == "":
				ps.add(rk+".claims", "a claim name is empty")
			case r.Claims[ck] == "":
				ps.add(rk+".claims."+ck, "empty pattern matches only an empty claim; use \"*\" to accept any value")
			}
		}
	}

	for _, pn := range slices.Sorted(maps.Keys(a.Params)) {
		p := a.Params[pn]
		pk := key + ".params." + pn
		if !paramNamePattern.MatchString(pn) {
			ps.add(pk, "parameter name %q must match %s", pn, paramNamePattern)
		}
		if p.Pattern != "" {
			if _, err := regexp.Compile(p.Pattern); err != nil {
				ps.add(pk+".pattern", "does not compile: %v", err)
			} else if _, err := policy.CompilePattern(p.Pattern); err != nil {
				ps.add(pk+".pattern", "does not compile once anchored: %v", err)
			}
		}
		if p.MaxLength < 0 {
			ps.add(pk+".max_length", "must be >= 0 (0 means the default, %d), got %d", policy.DefaultMaxParamLength, p.MaxLength)
		}
	}

	ap := a.Approvers
	checkNonEmpty(ps, key+".approvers.groups", ap.Groups)
	checkNonEmpty(ps, key+".approvers.users", ap.Users)
	users := distinctNonEmpty(ap.Users)
	if ap.MinApprovals < 1 {
		ps.add(key+".approvers.min_approvals", "must be >= 1, got %d", ap.MinApprovals)
	}
	switch {
	case len(ap.Groups) == 0 && len(users) == 0:
		ps.add(key+".approvers", "no groups and no users: nobody could approve this action")
	case len(ap.Groups) == 0 && ap.MinApprovals > len(users):
		ps.add(key+".approvers.min_approvals", "is %d but only %d user(s) are named and no groups: requests could never be approved", ap.MinApprovals, len(users))
	}
	validateRequire(ps, key, ap)
	validateWindows(ps, key, *a)

	switch {
	case a.TTL <= 0:
		ps.add(key+".ttl", "must be > 0, got %s", FormatDuration(a.TTL))
	case a.TTL > MaxActionTTL:
		ps.add(key+".ttl", "%s is more than the maximum, %s (30 days)", FormatDuration(a.TTL), FormatDuration(MaxActionTTL))
	}

	checkNonEmpty(ps, key+".notify.slack", a.Notify.Slack)
	checkNonEmpty(ps, key+".notify.teams", a.Notify.Teams)
	validateRemind(ps, key, a)
	validateBreakGlass(ps, key, a)

	validateWebhook(ps, key+".on_approve.webhook", a.OnApprove.Webhook, "the endpoint that receives approved requests")

	validateAttestation(ps, key+".attestation", a.Attestation)

	if s := a.StepUp; s != nil {
		sk := key + ".step_up"
		if len(s.MFAMethods) > 0 && !s.RequireMFA {
			ps.add(sk+".mfa_methods", "has no effect without require_mfa: true")
		}
		if s.MaxAge <= 0 {
			ps.add(sk+".max_age", "must be > 0 (how recent the sign-in must be, e.g. 5m), got %s", FormatDuration(s.MaxAge))
		}
		checkNonEmpty(ps, sk+".acr_values", s.ACRValues)
	}
}

// validateWebhook checks a webhook (an action's on_approve.webhook,
// audit.publish.webhook) at key, when it is configured; what says what its
// URL is for.
func validateWebhook(ps *problems, key string, w WebhookConfig, what string) {
	if !w.Configured() {
		return
	}
	if w.URL == "" {
		ps.add(key+".url", "required: %s", what)
	} else {
		checkURL(ps, key+".url", w.URL, urlRule{})
	}
	if w.Timeout <= 0 {
		ps.add(key+".timeout", "must be > 0, got %s", FormatDuration(w.Timeout))
	}
}

// urlRule says what checkURL accepts.
type urlRule struct {
	// httpsUnlessLoopback refuses http except for loopback hosts.
	httpsUnlessLoopback bool
	// noQuery refuses a query or fragment.
	noQuery bool
	// showValue quotes the URL in messages; off for URLs that may carry
	// credentials (webhooks).
	showValue bool
}

// checkURL reports what is wrong with an absolute http(s) URL and returns
// whether it is fine.
func checkURL(ps *problems, key, raw string, rule urlRule) bool {
	shown := "the URL"
	u, err := url.Parse(raw)
	if rule.showValue && err == nil {
		// Shown without user info, query or fragment: where a token or a
		// password hides.
		bare := *u
		bare.User, bare.RawQuery, bare.ForceQuery, bare.Fragment, bare.RawFragment = nil, "", false, "", ""
		shown = strconv.Quote(bare.String())
	}
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		ps.add(key, "%s is not a valid URL: %v", shown, err)
		return false
	}
	if !u.IsAbs() || u.Host == "" {
		ps.add(key, "%s is not an absolute URL; write it as https://host/…", shown)
		return false
	}
	switch u.Scheme {
	case "https":
	case "http":
		if rule.httpsUnlessLoopback && !hostlist.IsLoopback(u.Hostname()) {
			ps.add(key, "%s must use https (http is allowed only for loopback hosts such as 127.0.0.1 or localhost)", shown)
			return false
		}
	default:
		want := "https"
		if !rule.httpsUnlessLoopback {
			want = "http or https"
		}
		ps.add(key, "%s has scheme %q; use %s", shown, u.Scheme, want)
		return false
	}
	if rule.noQuery && (u.RawQuery != "" || u.Fragment != "") {
		ps.add(key, "%s must not have a query or fragment", shown)
		return false
	}
	if rule.showValue && u.User != nil {
		ps.add(key, "must not contain a user name or password")
		return false
	}
	return true
}

func checkListen(ps *problems, key, addr string) {
	if addr == "" {
		ps.add(key, "required: host:port to listen on (e.g. 127.0.0.1:8080, or :8080 for every interface)")
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		if ae, ok := err.(*net.AddrError); ok {
			err = fmt.Errorf("%s", ae.Err)
		}
		ps.add(key, "%q is not host:port (e.g. 127.0.0.1:8080, or :8080 for every interface): %v", addr, err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		ps.add(key, "%q: port %q is not a number from 0 to 65535", addr, port)
	}
}

// checkNonEmpty reports empty entries of a list.
func checkNonEmpty(ps *problems, key string, list []string) {
	for i, s := range list {
		if strings.TrimSpace(s) == "" {
			ps.add(fmt.Sprintf("%s[%d]", key, i), "is empty")
		}
	}
}

func distinctNonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if strings.TrimSpace(s) != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none (add a requesters entry)"
	}
	return strings.Join(names, ", ")
}

func firstOr(names []string, def string) string {
	if len(names) > 0 {
		return names[0]
	}
	return def
}

// FormatDuration prints d without trailing zero units: 1h, 1m30s, 720h,
// as the configuration's summaries show durations.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Warnings returns things that are allowed but probably not meant, sorted
// by key: notifications to an unconfigured platform, chat without an IdP,
// actions nobody in dev mode could approve, unsigned webhooks, and so on.
// `signoff config check` prints them; serve may log them.
func (c *Config) Warnings() []Problem {
	var ws problems
	chat := c.Slack.Configured() || c.Teams.Configured()
	if chat && !c.IdP.Configured() {
		ws.add("idp", "slack or teams is configured but idp is not: chat votes count only through an approver's linked IdP identity, so none would count")
	}
	if len(c.Actions) == 0 {
		ws.add("actions", "no actions are declared: nothing can be requested")
	}
	if c.IdP.Configured() && c.IdP.LinkMatch == LinkMatchEmail && c.IdP.EmailVerified == EmailVerifiedAssumed {
		ws.add("idp.email_verified", "is assumed: an email the IdP does not mark as verified proves whose chat account it is, so anyone who can set their own email at the IdP can link another person's chat account to themselves; keep required unless no user can change their email there (Microsoft Entra ID: prefer the optional claim xms_edov)")
	}
	if c.IdP.Configured() && c.IdP.LinkMatch == LinkMatchNone {
		ws.add("idp.link_match", "is none: signoff does not check that the person who completes a sign-in link owns the chat account it was sent to, so a link forwarded to (or by) an approver lets one person vote as another; use email unless your chat accounts carry no email")
	}
	if c.IdP.Configured() {
		for i, r := range c.Requesters {
			ws = append(ws, selfApprovalBlindSpot(fmt.Sprintf("requesters[%d]", i), r, c.IdP.PersonClaims)...)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Actions)) {
		a := c.Actions[name]
		key := "actions." + name
		if len(a.Notify.Slack) > 0 && !c.Slack.Configured() {
			ws.add(key+".notify.slack", "slack is not configured; these channels will not be notified")
		}
		if len(a.Notify.Teams) > 0 && !c.Teams.Configured() {
			ws.add(key+".notify.teams", "teams is not configured; these conversations will not be notified")
		}
		if chat && len(a.Notify.Slack) == 0 && len(a.Notify.Teams) == 0 {
			ws.add(key+".notify", "no channel is notified: approvers will not hear of requests")
		}
		ws = append(ws, c.remindWarnings(key, a)...)
		ws = append(ws, c.breakGlassWarnings(key, a)...)
		if w := a.OnApprove.Webhook; w.Configured() && w.Secret == "" {
			ws.add(key+".on_approve.webhook.secret", "not set: the receiver cannot verify that calls come from signoff")
		}
		rulesAndWindowsWarnings(&ws, key, a)
		if a.StepUp != nil && !c.IdP.Configured() {
			ws.add(key+".step_up", "idp is not configured, so no approver can complete the step-up sign-in")
		}
		if len(c.Dev.Approvers) > 0 {
			eligible := 0
			for _, d := range c.Dev.Approvers {
				if devMayApprove(a.Approvers, d) {
					eligible++
				}
			}
			if eligible < a.Approvers.MinApprovals {
				ws.add(key+".approvers", "in dev mode only %d of the dev approvers may approve, fewer than min_approvals (%d)", eligible, a.Approvers.MinApprovals)
			}
		}
	}
	return ws.sorted()
}

func devMayApprove(ap ApproversConfig, d DevApprover) bool {
	for _, g := range d.Groups {
		if slices.Contains(ap.Groups, g) {
			return true
		}
	}
	for _, u := range ap.Users {
		if u == d.Name || (d.Email != "" && strings.EqualFold(u, d.Email)) {
			return true
		}
	}
	return false
}

// selfApprovalBlindSpot warns when the person behind a GitHub Actions or
// GitLab CI request can never be recognized among the approvers, so that
// self-approval goes unnoticed: the requester's person claim is the
// token's subject (a repository or project path, never a person), or
// idp.person_claims is empty (a CI login is never an IdP subject or
// email).
func selfApprovalBlindSpot(key string, r RequesterConfig, personClaims []string) []Problem {
	host := ""
	if u, err := url.Parse(r.Issuer); err == nil {
		host = strings.ToLower(u.Hostname())
	}
	ci := ""
	switch {
	case host == "token.actions.githubusercontent.com" || strings.HasSuffix(host, ".ghe.com"):
		ci = "GitHub Actions"
	case strings.Contains(host, "gitlab"):
		ci = "GitLab CI"
	default:
		return nil
	}
	var ws problems
	switch {
	case r.PersonClaim == "sub":
		ws.add(key+".person_claim", "is sub: a %s token's subject names a repository or project, never a person, so signoff cannot tell when requesters approve their own requests; use %s", ci, map[string]string{"GitHub Actions": "actor", "GitLab CI": "user_login"}[ci])
	case len(personClaims) == 0:
		ws.add("idp.person_claims", "is empty: the %s login of requester %s is never an IdP subject or email, so an approver approving their own request goes unnoticed; list the IdP claim that holds CI logins (e.g. preferred_username or a custom attribute)", ci, r.Name)
	}
	return ws
}
