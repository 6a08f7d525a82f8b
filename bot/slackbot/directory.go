package slackbot

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// Bot token scopes signoff uses.
const (
	// ScopeChatWrite posts and updates cards, private replies and notices.
	ScopeChatWrite = "chat:write"
	// ScopeCommands is the /signoff slash command.
	ScopeCommands = "commands"
	// ScopeUsersRead lets users.info read an account: its workspace (the
	// Slack Connect check of slash commands) and its names.
	ScopeUsersRead = "users:read"
	// ScopeUsersReadEmail adds the profile email to users.info: the proof
	// that whoever completes a sign-in link owns the Slack account.
	ScopeUsersReadEmail = "users:read.email"
)

// RequiredScopes lists the bot token scopes signoff needs with the given
// idp.link_match: users:read.email unless link_match is "none".
func RequiredScopes(linkMatch string) []string {
	s := []string{ScopeChatWrite, ScopeCommands, ScopeUsersRead}
	if linkMatch != linkflow.LinkMatchNone {
		s = append(s, ScopeUsersReadEmail)
	}
	return s
}

// scopeFix says how to give the app a scope it lacks.
const scopeFix = "add it to the app's bot token scopes (deploy/slack-app-manifest.yaml, or the app's OAuth & Permissions page → Scopes), " +
	"then reinstall the app to the workspace (Install App → Reinstall) so that the bot token carries it"

// rejectForeignUser is the callback.rejected reason of a click or command
// by an account of another organisation (Slack Connect).
const rejectForeignUser chatflow.RejectReason = "foreign_user"

// foreignUserText is what an account of another organisation is told.
const foreignUserText = ":no_entry_sign: signoff serves only members of the Slack workspace it is installed in. " +
	"Accounts from other organisations (Slack Connect) can neither vote nor link an account here, so nothing was done."

// TokenError is a definite problem with the bot token that CheckToken
// found: Slack refused the token, it belongs to another workspace, or it
// lacks scopes signoff needs. Restarting does not help; the operator has
// to fix the app or the config.
type TokenError struct {
	// Missing lists the scopes the token lacks.
	Missing []string
	// Problem describes any other problem.
	Problem string
}

func (e *TokenError) Error() string {
	var parts []string
	if e.Problem != "" {
		parts = append(parts, e.Problem)
	}
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("the Slack app's bot token lacks the scope%s %s: %s",
			cards.Plural(len(e.Missing)), strings.Join(e.Missing, ", "), scopeFix))
	}
	return "slackbot: " + strings.Join(parts, "; ")
}

// tokenInfo is what auth.test said about the bot token.
type tokenInfo struct {
	teamName     string
	enterpriseID string
	// scopes is nil when Slack did not report them.
	scopes []string
}

// maxAuthTestBody caps auth.test's answer.
const maxAuthTestBody = 64 << 10

// CheckToken asks Slack about the bot token (auth.test) and compares the
// scopes Slack reports for it (the X-OAuth-Scopes header) with required
// (see RequiredScopes). It returns a *TokenError when Slack refuses the
// token, the token belongs to a workspace other than slack.team_id, or
// scopes are missing; any other error means Slack could not be asked
// (try again later). What it learns (the workspace's name, its Enterprise
// Grid org) is kept for LookupAccount and the Slack Connect check.
func (b *Bot) CheckToken(ctx context.Context, required []string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cmp.Or(b.opts.APIURL, slack.APIURL)+"auth.test", nil)
	if err != nil {
		return fmt.Errorf("slackbot: auth.test: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+b.opts.BotToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("slackbot: auth.test: %w: %w", linkflow.ErrDirectoryUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("slackbot: auth.test: %w: HTTP %s", linkflow.ErrDirectoryUnavailable, resp.Status)
	}
	var out struct {
		OK                  bool   `json:"ok"`
		Error               string `json:"error"`
		Team                string `json:"team"`
		TeamID              string `json:"team_id"`
		EnterpriseID        string `json:"enterprise_id"`
		IsEnterpriseInstall bool   `json:"is_enterprise_install"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAuthTestBody)).Decode(&out); err != nil {
		return fmt.Errorf("slackbot: auth.test: %w: unreadable answer: %w", linkflow.ErrDirectoryUnavailable, err)
	}
	if !out.OK {
		switch out.Error {
		case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "not_allowed_token_type":
			return &TokenError{Problem: fmt.Sprintf("Slack refuses slack.bot_token (%s): use the app's current Bot User OAuth Token (xoxb-…, OAuth & Permissions page)", out.Error)}
		}
		return fmt.Errorf("slackbot: auth.test: %w: %s", linkflow.ErrDirectoryUnavailable, out.Error)
	}
	info := &tokenInfo{teamName: out.Team, enterpriseID: out.EnterpriseID}
	if h, ok := resp.Header[http.CanonicalHeaderKey("X-OAuth-Scopes")]; ok {
		info.scopes = []string{}
		for _, s := range strings.Split(strings.Join(h, ","), ",") {
			if s = strings.TrimSpace(s); s != "" {
				info.scopes = append(info.scopes, s)
			}
		}
	}
	if b.opts.TeamID != "" && out.TeamID != "" && out.TeamID != b.opts.TeamID && !out.IsEnterpriseInstall {
		return &TokenError{Problem: fmt.Sprintf("the bot token belongs to workspace %s, but slack.team_id is %s: use the token of the app installed in %s, or fix slack.team_id",
			out.TeamID, b.opts.TeamID, b.opts.TeamID)}
	}
	b.token.Store(info)
	if info.scopes == nil {
		b.log.Warn("slack did not report the bot token's scopes; cannot check them", "required", strings.Join(required, ","))
		return nil
	}
	var missing []string
	for _, s := range required {
		if !slices.Contains(info.scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return &TokenError{Missing: missing}
	}
	b.log.Info("slack bot token checked", "team", out.TeamID, "scopes", strings.Join(info.scopes, ","))
	return nil
}

// lacksScope reports whether CheckToken saw the token without scope.
func (b *Bot) lacksScope(scope string) bool {
	info := b.token.Load()
	return info != nil && info.scopes != nil && !slices.Contains(info.scopes, scope)
}

// ownEnterprise is the Enterprise Grid org of the bot's workspace: the
// configured one, else the one auth.test reported.
func (b *Bot) ownEnterprise() string {
	if b.opts.EnterpriseID != "" {
		return b.opts.EnterpriseID
	}
	if info := b.token.Load(); info != nil {
		return info.enterpriseID
	}
	return ""
}

// memberTeam reports whether teamID, the team Slack names for an account
// (an interaction's user.team_id), is this signoff's own: the configured
// workspace or its Enterprise Grid org (Slack reports the org's E… id for
// Grid members). An account of another organisation in a Slack Connect
// channel carries its own team. An empty teamID is accepted: older payload
// shapes do not carry one, and the workspace check has already passed.
func (b *Bot) memberTeam(teamID string) bool {
	if teamID == "" {
		return true
	}
	for _, own := range []string{b.opts.TeamID, b.ownEnterprise()} {
		if own != "" && teamID == own {
			return true
		}
	}
	return false
}

// memberAccount reports whether users.info's record u is an account of
// this signoff's own workspace or Enterprise Grid org.
func (b *Bot) memberAccount(u *slack.User) bool {
	if u.IsStranger {
		return false
	}
	if ent := u.Enterprise.EnterpriseID; ent != "" && ent == b.ownEnterprise() {
		return true
	}
	return b.memberTeam(u.TeamID)
}

// userInfo calls users.info for userID and sorts its failures for
// linkflow.AccountDirectory: an error wrapping linkflow.ErrAccountNotFound when
// Slack does not know the account (or it is deactivated),
// linkflow.ErrDirectoryUnavailable when Slack could not be asked now (rate
// limit, 5xx, network), else an error saying what to fix.
func (b *Bot) userInfo(ctx context.Context, userID string) (*slack.User, error) {
	if !usableUserID(userID) {
		return nil, fmt.Errorf("slackbot: %q is not a Slack user id: %w", userID, linkflow.ErrAccountNotFound)
	}
	callCtx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
	defer cancel()
	u, err := b.api.GetUserInfoContext(callCtx, userID, slack.GetUserInfoOptionIncludeLocale(false))
	if err != nil {
		return nil, lookupError(err)
	}
	if u.Deleted {
		return nil, fmt.Errorf("slackbot: Slack user %s is deactivated: %w", userID, linkflow.ErrAccountNotFound)
	}
	return u, nil
}

// lookupError sorts a users.info error (see userInfo).
func lookupError(err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return fmt.Errorf("slackbot: users.info: %w: rate limited, retry after %s", linkflow.ErrDirectoryUnavailable, rl.RetryAfter)
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code == http.StatusTooManyRequests || sc.Code >= 500 {
			return fmt.Errorf("slackbot: users.info: %w: %w", linkflow.ErrDirectoryUnavailable, err)
		}
		return fmt.Errorf("slackbot: users.info: %w", err)
	}
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		// No answer from Slack: the network, a timeout, a garbled body.
		return fmt.Errorf("slackbot: users.info: %w: %w", linkflow.ErrDirectoryUnavailable, err)
	}
	switch se.Err {
	case "user_not_found", "users_not_found", "user_not_visible":
		return fmt.Errorf("slackbot: users.info: %w (%s)", linkflow.ErrAccountNotFound, se.Err)
	case "missing_scope":
		needed := ""
		if se.Needed != "" {
			needed = " (Slack says it needs " + se.Needed + ")"
		}
		return fmt.Errorf("slackbot: users.info: missing_scope%s: signoff's Slack app needs the %s and %s scopes to look up who owns a Slack account: %s",
			needed, ScopeUsersRead, ScopeUsersReadEmail, scopeFix)
	case "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive":
		return fmt.Errorf("slackbot: users.info: Slack refuses slack.bot_token (%s): use the app's current Bot User OAuth Token", se.Err)
	case "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
		return fmt.Errorf("slackbot: users.info: %w: %s", linkflow.ErrDirectoryUnavailable, se.Err)
	}
	return fmt.Errorf("slackbot: users.info: %w", err)
}

// LookupAccount returns Slack's record of p (users.info): the profile
// email, the real and display names. It implements linkflow.AccountDirectory
// for the account-link flow. An account Slack does not know, a
// deactivated one and one of another organisation (a Slack Connect
// member, whom signoff does not serve) wrap linkflow.ErrAccountNotFound; a
// rate limit, a Slack 5xx or a network failure wraps
// linkflow.ErrDirectoryUnavailable. A profile without an email gives an
// account with an empty Email (the Linker then refuses to link it),
// unless the token is known to lack users:read.email, which is an error
// that says so.
func (b *Bot) LookupAccount(ctx context.Context, p linkflow.PlatformUser) (linkflow.ChatAccount, error) {
	if p.Platform != "" && p.Platform != Platform {
		return linkflow.ChatAccount{}, fmt.Errorf("slackbot: cannot look up a %s account: %w", p.Platform, linkflow.ErrAccountNotFound)
	}
	if p.Workspace != "" && b.opts.TeamID != "" && p.Workspace != b.opts.TeamID && p.Workspace != b.ownEnterprise() {
		return linkflow.ChatAccount{}, fmt.Errorf("slackbot: Slack user %s is in workspace %s; this signoff serves %s: %w", p.UserID, p.Workspace, b.opts.TeamID, linkflow.ErrAccountNotFound)
	}
	u, err := b.userInfo(ctx, p.UserID)
	if err != nil {
		return linkflow.ChatAccount{}, err
	}
	if !b.memberAccount(u) {
		return linkflow.ChatAccount{}, fmt.Errorf("slackbot: Slack user %s belongs to another organisation (team %s), not to the workspace signoff serves: %w",
			p.UserID, u.TeamID, linkflow.ErrAccountNotFound)
	}
	acct := linkflow.ChatAccount{
		DisplayName: strings.TrimSpace(cmp.Or(u.Profile.RealName, u.RealName, u.Profile.DisplayName)),
		Handle:      strings.TrimSpace(cmp.Or(u.Profile.DisplayName, u.Name)),
		Email:       strings.TrimSpace(u.Profile.Email),
	}
	if info := b.token.Load(); info != nil {
		acct.WorkspaceName = info.teamName
	}
	if acct.Email == "" && b.lacksScope(ScopeUsersReadEmail) {
		return acct, fmt.Errorf("slackbot: Slack shows signoff no email for user %s because the app's bot token lacks the %s scope: %s",
			p.UserID, ScopeUsersReadEmail, scopeFix)
	}
	return acct, nil
}

var _ linkflow.AccountDirectory = (*Bot)(nil)

// memberCacheTTL is how long a users.info answer about an account's
// organisation is reused by the slash command check. A Slack user id
// stays in its organisation.
const (
	memberCacheTTL = time.Hour
	maxMemberCache = 10_000
)

// memberCache remembers which accounts users.info placed in (or outside)
// signoff's organisation.
type memberCache struct {
	mu      sync.Mutex
	entries map[string]memberEntry
}

type memberEntry struct {
	member bool
	team   string
	until  time.Time
}

func (c *memberCache) get(user string, now time.Time) (memberEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[user]
	if !ok || !now.Before(e.until) {
		return memberEntry{}, false
	}
	return e, true
}

func (c *memberCache) put(user string, e memberEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxMemberCache {
		c.entries = map[string]memberEntry{}
	}
	c.entries[user] = e
}

// isMember reports whether the Slack account userID belongs to signoff's
// own workspace or org, and the team Slack names for it, asking users.info
// (a slash command carries no team of its user, only of where it was
// typed). Errors are userInfo's.
func (b *Bot) isMember(ctx context.Context, userID string) (member bool, team string, err error) {
	now := b.clock.Now()
	if e, ok := b.members.get(userID, now); ok {
		return e.member, e.team, nil
	}
	u, err := b.userInfo(ctx, userID)
	if err != nil {
		return false, "", err
	}
	e := memberEntry{member: b.memberAccount(u), team: u.TeamID, until: now.Add(memberCacheTTL)}
	b.members.put(userID, e)
	return e.member, e.team, nil
}

// refuseForeign answers a click or command by an account of another
// organisation: a callback.rejected record (sampled under a flood) and a
// private message, without a sign-in link. Nothing reaches approvals.
func (b *Bot) refuseForeign(ctx context.Context, c click, userTeam, source string) {
	b.rejectCallback(ctx, c.team, rejectForeignUser, source)
	b.log.Info("slack account of another organisation refused", "user", c.user, "user_team", userTeam, "team", c.team, "source", source)
	if usableUserID(c.user) {
		b.reply(ctx, c, foreignUserText)
	}
}

// commandFromMember checks that a slash command's user belongs to
// signoff's organisation before its work runs; otherwise it answers the
// user itself and reports false.
func (b *Bot) commandFromMember(ctx context.Context, c click, source string) bool {
	member, team, err := b.isMember(ctx, c.user)
	switch {
	case err == nil && member:
		return true
	case err == nil:
		b.refuseForeign(ctx, c, team, source)
	case errors.Is(err, linkflow.ErrDirectoryUnavailable):
		b.log.Warn("could not ask slack who a command's user is", "user", c.user, "err", err)
		b.reply(ctx, c, ":warning: signoff could not confirm your Slack account with Slack right now, so it did nothing. Try again in a minute.")
	default:
		b.log.Error("could not confirm a command's user with slack", "user", c.user, "err", err)
		b.reply(ctx, c, ":warning: signoff could not confirm your Slack account with Slack, so it did nothing. Ask whoever runs signoff to check its log.")
	}
	return false
}
