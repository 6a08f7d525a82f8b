package config

import (
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/signoff-dev/signoff/policy"
)

// Summary renders a one-screen description of the configuration for
// `signoff config check`: the server settings, which integrations are
// configured, and per action who may request it with which parameters, who
// may approve it, how long it waits, where it is announced and what runs on
// approval, followed by Warnings. It never prints a secret (nor a webhook
// URL's path or query, which often carry tokens); it says where a secret
// comes from instead.
func (c *Config) Summary() string {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "  %-14s %s\n", label, fmt.Sprintf(format, args...))
	}
	more := func(format string, args ...any) { line("", format, args...) }

	if c.source != "" {
		fmt.Fprintf(&b, "signoff configuration from %s\n", c.source)
	} else {
		b.WriteString("signoff configuration\n")
	}
	if len(c.fromEnv) > 0 {
		vars := make([]string, 0, len(c.fromEnv))
		for _, v := range c.fromEnv {
			vars = append(vars, "$"+v)
		}
		sort.Strings(vars)
		fmt.Fprintf(&b, "overridden by %s\n", strings.Join(vars, ", "))
	}

	b.WriteString("\nServer\n")
	line("listen", "%s", c.Listen)
	line("public_url", "%s", orNotSet(c.PublicURL))
	switch c.Storage.Driver {
	case DriverBolt:
		line("storage", "bolt, file %s", c.Storage.Path)
	case DriverPostgres:
		line("storage", "postgres, DSN %s", secretSource(c.Storage.DSN, c.Storage.DSNFile))
	default:
		line("storage", "%q (unknown driver)", c.Storage.Driver)
	}
	line("log", "level %s, format %s", c.Log.Level, c.Log.Format)
	if c.Audit.SigningKey != "" {
		line("audit", "signed checkpoint every %d records, key %s", c.Audit.CheckpointEvery, secretSource(c.Audit.SigningKey, c.Audit.SigningKeyFile))
	} else {
		line("audit", "checkpoints unsigned (set audit.signing_key_file to sign one every %d records)", c.Audit.CheckpointEvery)
	}
	line("auditors", "%s", groupsOrNone(c.Auditors.Groups))
	line("admins", "%s", groupsOrNone(c.Admins.Groups))
	line("limits", "%d requests a minute and %d pending per requester; %d clicks and commands a minute per chat account",
		c.Limits.RequestsPerMinute, c.Limits.PendingPerRequester, c.Limits.ClicksPerMinute)

	b.WriteString("\nRequesters (CI token issuers)\n")
	if len(c.Requesters) == 0 {
		more("none: no CI job can request anything")
	}
	for _, r := range c.Requesters {
		line(r.Name, "%s, audience %s, person claim %s", r.Issuer, r.Audience, r.PersonClaim)
	}

	b.WriteString("\nIntegrations\n")
	if c.IdP.Configured() {
		line("idp", "configured: %s, client %s, client secret %s", c.IdP.Issuer, c.IdP.ClientID, secretSource(c.IdP.ClientSecret, c.IdP.ClientSecretFile))
		more("scopes %s; groups from claim %q, re-verified every %s; links last %s",
			strings.Join(c.IdP.Scopes, " "), c.IdP.GroupsClaim, fmtDuration(c.IdP.GroupsMaxAge), fmtDuration(c.IdP.LinkMaxAge))
		if c.IdP.CLIClientID != "" {
			more("signoff login: public client %s; its ID tokens are accepted on admin and auditor endpoints", c.IdP.CLIClientID)
		} else {
			more("signoff login: off (set idp.cli_client_id to let people use their IdP sign-in with the API)")
		}
	} else {
		line("idp", "not configured (approvers cannot link chat accounts; dev mode does not need it)")
	}
	if s := c.Slack; s.Configured() {
		mode := "HTTP callbacks (signing secret " + secretSource(s.SigningSecret, s.SigningSecretFile) + ")"
		if s.AppToken != "" {
			mode = "Socket Mode (app token " + secretSource(s.AppToken, s.AppTokenFile) + ")"
		}
		ws := s.TeamID
		if s.EnterpriseID != "" {
			ws = strings.TrimPrefix(ws+", enterprise "+s.EnterpriseID, ", ")
		}
		line("slack", "configured: workspace %s, %s, bot token %s", orNotSet(ws), mode, secretSource(s.BotToken, s.BotTokenFile))
	} else {
		line("slack", "not configured")
	}
	if t := c.Teams; t.Configured() {
		line("teams", "configured: app %s, tenants %s, app password %s", orNotSet(t.AppID), strings.Join(t.TenantIDs, ", "), secretSource(t.AppPassword, t.AppPasswordFile))
	} else {
		line("teams", "not configured")
	}
	if f := c.SSF; f.Configured() {
		bearer := "no bearer token"
		if f.BearerToken != "" {
			bearer = "bearer token " + secretSource(f.BearerToken, f.BearerTokenFile)
		}
		line("ssf", "receiving SETs at POST /ssf/events from %s (keys %s), audience %s, %s", f.Issuer, f.JWKSURL, f.Audience, bearer)
	} else {
		line("ssf", "not configured (no identity provider pushes security events)")
	}
	if len(c.Dev.Approvers) > 0 {
		var ds []string
		for _, d := range c.Dev.Approvers {
			ds = append(ds, fmt.Sprintf("%s (%s)", d.Name, groupsOrNone(d.Groups)))
		}
		line("dev approvers", "%s", strings.Join(ds, ", "))
	}

	if len(c.Actions) == 0 {
		b.WriteString("\nNo actions: nothing can be requested.\n")
	}
	for _, name := range sortedKeys(c.Actions) {
		a := c.Actions[name]
		fmt.Fprintf(&b, "\nAction %s", name)
		if a.Description != "" {
			fmt.Fprintf(&b, ": %s", a.Description)
		}
		b.WriteString("\n")

		label := "requested by"
		if len(a.Requesters) == 0 {
			line(label, "nobody (no requester rules)")
		}
		for _, r := range a.Requesters {
			var cs []string
			for _, k := range sortedKeys(r.Claims) {
				cs = append(cs, k+"="+r.Claims[k])
			}
			if len(cs) == 0 {
				line(label, "%s, any token", r.Issuer)
			} else {
				line(label, "%s with %s", r.Issuer, strings.Join(cs, ", "))
			}
			label = ""
		}

		label = "params"
		if len(a.Params) == 0 {
			line(label, "none (a request with any parameter is refused)")
		}
		for _, pn := range sortedKeys(a.Params) {
			p := a.Params[pn]
			desc := []string{"optional"}
			if p.Required {
				desc[0] = "required"
			}
			if p.Pattern != "" {
				desc = append(desc, "pattern "+p.Pattern)
			}
			maxLen := p.MaxLength
			if maxLen == 0 {
				maxLen = policy.DefaultMaxParamLength
			}
			desc = append(desc, fmt.Sprintf("at most %d bytes", maxLen))
			line(label, "%s: %s", pn, strings.Join(desc, ", "))
			label = ""
		}

		ap := a.Approvers
		var who []string
		if len(ap.Groups) > 0 {
			who = append(who, "groups "+strings.Join(ap.Groups, ", "))
		}
		if len(ap.Users) > 0 {
			who = append(who, "users "+strings.Join(ap.Users, ", "))
		}
		if len(who) == 0 {
			who = []string{"nobody"}
		}
		self := "self-approval not allowed"
		if ap.AllowSelfApproval {
			self = "self-approval ALLOWED"
		}
		plural := "s"
		if ap.MinApprovals == 1 {
			plural = ""
		}
		line("approved by", "%d approval%s from %s; %s", ap.MinApprovals, plural, strings.Join(who, " or "), self)
		line("expires", "after %s", fmtDuration(a.TTL))

		var where []string
		if len(a.Notify.Slack) > 0 {
			where = append(where, "slack "+strings.Join(a.Notify.Slack, ", "))
		}
		if len(a.Notify.Teams) > 0 {
			where = append(where, "teams "+strings.Join(a.Notify.Teams, ", "))
		}
		if len(where) == 0 {
			where = []string{"no channel (dev console only)"}
		}
		line("notifies", "%s", strings.Join(where, "; "))

		if w := a.OnApprove.Webhook; w.Configured() {
			signed := "unsigned"
			if w.Secret != "" {
				signed = "signed, secret " + secretSource(w.Secret, w.SecretFile)
			}
			line("on approve", "webhook %s (timeout %s, %s)", redactURL(w.URL), fmtDuration(w.Timeout), signed)
		} else {
			line("on approve", "nothing runs (the CI job proceeds on its own)")
		}
		if s := a.StepUp; s != nil {
			desc := fmt.Sprintf("approvers must have signed in within %s", fmtDuration(s.MaxAge))
			if s.RequireMFA {
				desc += ", with MFA"
			}
			if len(s.ACRValues) > 0 {
				desc += ", acr " + strings.Join(s.ACRValues, " ")
			}
			line("step-up", "%s", desc)
		}
		reasons := []string{}
		if a.RequireApproveReason {
			reasons = append(reasons, "to approve")
		}
		if a.RequireDenyReason {
			reasons = append(reasons, "to deny")
		}
		if len(reasons) > 0 {
			line("reason", "required %s", strings.Join(reasons, " and "))
		}
	}

	if ws := c.Warnings(); len(ws) > 0 {
		b.WriteString("\nWarnings\n")
		for _, w := range ws {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	return b.String()
}

// secretSource says whether and where from a secret is set, without its
// value.
func secretSource(s Secret, file string) string {
	switch {
	case file != "":
		return "from file " + file
	case s != "":
		return "set inline"
	default:
		return "not set"
	}
}

func orNotSet(s string) string {
	if s == "" {
		return "not set"
	}
	return s
}

func groupsOrNone(gs []string) string {
	if len(gs) == 0 {
		return "no groups"
	}
	return "groups " + strings.Join(gs, ", ")
}

// redactURL keeps a URL's scheme and host; its user, path and query may
// carry tokens (Slack incoming webhooks put theirs in the path).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		s += "/…"
	}
	return s
}
