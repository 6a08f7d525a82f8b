package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
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
	var w summaryWriter
	w.header(c)
	w.server(c)
	w.requesters(c.Requesters)
	w.integrations(c)
	if len(c.Actions) == 0 {
		w.WriteString("\nNo actions: nothing can be requested.\n")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Actions)) {
		w.action(name, c.Actions[name])
	}
	w.warnings(c.Warnings())
	return w.String()
}

// summaryWriter builds Summary's text: a section title, then labelled lines
// whose labels line up.
type summaryWriter struct {
	strings.Builder
}

// line writes one labelled line of a section.
func (w *summaryWriter) line(label, format string, args ...any) {
	fmt.Fprintf(w, "  %-14s %s\n", label, fmt.Sprintf(format, args...))
}

// more continues the previous line's label on a line of its own.
func (w *summaryWriter) more(format string, args ...any) { w.line("", format, args...) }

// header names where the configuration came from and which environment
// variables overrode it.
func (w *summaryWriter) header(c *Config) {
	if c.source != "" {
		fmt.Fprintf(w, "signoff configuration from %s\n", c.source)
	} else {
		w.WriteString("signoff configuration\n")
	}
	if len(c.fromEnv) > 0 {
		vars := make([]string, 0, len(c.fromEnv))
		for _, v := range c.fromEnv {
			vars = append(vars, "$"+v)
		}
		sort.Strings(vars)
		fmt.Fprintf(w, "overridden by %s\n", strings.Join(vars, ", "))
	}
}

// server describes listening, storage, logging, audit, the auditor and
// admin groups and the limits.
func (w *summaryWriter) server(c *Config) {
	w.WriteString("\nServer\n")
	w.line("listen", "%s", c.Listen)
	w.line("public_url", "%s", orNotSet(c.PublicURL))
	switch c.Storage.Driver {
	case DriverBolt:
		w.line("storage", "bolt, file %s", c.Storage.Path)
	case DriverPostgres:
		w.line("storage", "postgres, DSN %s", secretSource(c.Storage.DSN, c.Storage.DSNFile))
	default:
		w.line("storage", "%q (unknown driver)", c.Storage.Driver)
	}
	w.line("log", "level %s, format %s", c.Log.Level, c.Log.Format)
	if c.Audit.SigningKey != "" {
		w.line("audit", "signed checkpoint every %d records, key %s", c.Audit.CheckpointEvery, secretSource(c.Audit.SigningKey, c.Audit.SigningKeyFile))
	} else {
		w.line("audit", "checkpoints unsigned (set audit.signing_key_file to sign one every %d records)", c.Audit.CheckpointEvery)
	}
	w.publishSummary(c)
	w.attestSummary(c) // attest.go
	w.line("auditors", "%s", groupsOrNone(c.Auditors.Groups))
	w.line("admins", "%s", groupsOrNone(c.Admins.Groups))
	w.line("limits", "%d requests a minute and %d pending per requester; %d clicks and commands a minute per chat account",
		c.Limits.RequestsPerMinute, c.Limits.PendingPerRequester, c.Limits.ClicksPerMinute)
}

// requesters lists the CI token issuers.
func (w *summaryWriter) requesters(rs []RequesterConfig) {
	w.WriteString("\nRequesters (CI token issuers)\n")
	if len(rs) == 0 {
		w.more("none: no CI job can request anything")
	}
	for _, r := range rs {
		w.line(r.Name, "%s, audience %s, person claim %s", r.Issuer, r.Audience, r.PersonClaim)
	}
}

// integrations says which of the IdP, Slack, Teams and Shared Signals are
// configured, and names the dev approvers.
func (w *summaryWriter) integrations(c *Config) {
	w.WriteString("\nIntegrations\n")
	if c.IdP.Configured() {
		w.line("idp", "configured: %s, client %s, client secret %s", c.IdP.Issuer, c.IdP.ClientID, secretSource(c.IdP.ClientSecret, c.IdP.ClientSecretFile))
		w.more("scopes %s; groups from claim %q, re-verified every %s; links last %s",
			strings.Join(c.IdP.Scopes, " "), c.IdP.GroupsClaim, FormatDuration(c.IdP.GroupsMaxAge), FormatDuration(c.IdP.LinkMaxAge))
		if c.IdP.CLIClientID != "" {
			w.more("signoff login: public client %s; its ID tokens are accepted on admin and auditor endpoints", c.IdP.CLIClientID)
		} else {
			w.more("signoff login: off (set idp.cli_client_id to let people use their IdP sign-in with the API)")
		}
	} else {
		w.line("idp", "not configured (approvers cannot link chat accounts; dev mode does not need it)")
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
		w.line("slack", "configured: workspace %s, %s, bot token %s", orNotSet(ws), mode, secretSource(s.BotToken, s.BotTokenFile))
	} else {
		w.line("slack", "not configured")
	}
	if t := c.Teams; t.Configured() {
		w.line("teams", "configured: app %s, tenants %s, app password %s", orNotSet(t.AppID), strings.Join(t.TenantIDs, ", "), secretSource(t.AppPassword, t.AppPasswordFile))
	} else {
		w.line("teams", "not configured")
	}
	if f := c.SSF; f.Configured() {
		bearer := "no bearer token"
		if f.BearerToken != "" {
			bearer = "bearer token " + secretSource(f.BearerToken, f.BearerTokenFile)
		}
		w.line("ssf", "receiving SETs at POST /ssf/events from %s (keys %s), audience %s, %s", f.Issuer, f.JWKSURL, f.Audience, bearer)
	} else {
		w.line("ssf", "not configured (no identity provider pushes security events)")
	}
	if len(c.Dev.Approvers) > 0 {
		var ds []string
		for _, d := range c.Dev.Approvers {
			ds = append(ds, fmt.Sprintf("%s (%s)", d.Name, groupsOrNone(d.Groups)))
		}
		w.line("dev approvers", "%s", strings.Join(ds, ", "))
	}
}

// action describes one action: who may request it with which parameters,
// who approves, when it expires, where it is announced and what it runs.
func (w *summaryWriter) action(name string, a ActionConfig) {
	fmt.Fprintf(w, "\nAction %s", name)
	if a.Description != "" {
		fmt.Fprintf(w, ": %s", a.Description)
	}
	w.WriteString("\n")
	w.actionRequesters(a.Requesters)
	w.actionParams(a.Params)
	w.actionApprovers(a.Approvers)
	w.actionRequire(a.Approvers.Require)
	w.line("expires", "after %s", FormatDuration(a.TTL))
	w.actionWindows(a)
	w.actionNotify(a.Notify)
	w.actionRemind(a)
	w.actionOnApprove(a)
	w.actionBreakGlass(a.BreakGlass)
	w.line("attestation", "audience %s", orNotSet(a.Attestation.Audience))
}

// actionRequesters lists an action's requester rules.
func (w *summaryWriter) actionRequesters(rules []RequesterRuleConfig) {
	label := "requested by"
	if len(rules) == 0 {
		w.line(label, "nobody (no requester rules)")
	}
	for _, r := range rules {
		var cs []string
		for _, k := range slices.Sorted(maps.Keys(r.Claims)) {
			cs = append(cs, k+"="+r.Claims[k])
		}
		if len(cs) == 0 {
			w.line(label, "%s, any token", r.Issuer)
		} else {
			w.line(label, "%s with %s", r.Issuer, strings.Join(cs, ", "))
		}
		label = ""
	}
}

// actionParams lists an action's declared parameters.
func (w *summaryWriter) actionParams(params map[string]ParamConfig) {
	label := "params"
	if len(params) == 0 {
		w.line(label, "none (a request with any parameter is refused)")
	}
	for _, pn := range slices.Sorted(maps.Keys(params)) {
		p := params[pn]
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
		w.line(label, "%s: %s", pn, strings.Join(desc, ", "))
		label = ""
	}
}

// actionApprovers says who approves an action, how many, and whether the
// requester may.
func (w *summaryWriter) actionApprovers(ap ApproversConfig) {
	self := "self-approval not allowed"
	if ap.AllowSelfApproval {
		self = "self-approval ALLOWED"
	}
	w.line("approved by", "%s; %s", approvalsFrom(ap.MinApprovals, ap.Groups, ap.Users), self)
}

// actionNotify says where an action's requests are announced.
func (w *summaryWriter) actionNotify(n NotifyConfig) {
	var where []string
	if len(n.Slack) > 0 {
		where = append(where, "slack "+strings.Join(n.Slack, ", "))
	}
	if len(n.Teams) > 0 {
		where = append(where, "teams "+strings.Join(n.Teams, ", "))
	}
	if len(where) == 0 {
		where = []string{"no channel (dev console only)"}
	}
	w.line("notifies", "%s", strings.Join(where, "; "))
}

// actionOnApprove says what runs on approval, and the step-up and reason
// rules an approver meets.
func (w *summaryWriter) actionOnApprove(a ActionConfig) {
	if wh := a.OnApprove.Webhook; wh.Configured() {
		signed := "unsigned"
		if wh.Secret != "" {
			signed = "signed, secret " + secretSource(wh.Secret, wh.SecretFile)
		}
		w.line("on approve", "webhook %s (timeout %s, %s)", RedactURL(wh.URL), FormatDuration(wh.Timeout), signed)
	} else {
		w.line("on approve", "nothing runs (the CI job proceeds on its own)")
	}
	if s := a.StepUp; s != nil {
		desc := fmt.Sprintf("approvers must have signed in within %s", FormatDuration(s.MaxAge))
		if s.RequireMFA {
			desc += ", with MFA"
		}
		if len(s.ACRValues) > 0 {
			desc += ", acr " + strings.Join(s.ACRValues, " ")
		}
		w.line("step-up", "%s", desc)
	}
	reasons := []string{}
	if a.RequireApproveReason {
		reasons = append(reasons, "to approve")
	}
	if a.RequireDenyReason {
		reasons = append(reasons, "to deny")
	}
	if len(reasons) > 0 {
		w.line("reason", "required %s", strings.Join(reasons, " and "))
	}
}

// warnings lists Config.Warnings, when there are any.
func (w *summaryWriter) warnings(ws []Problem) {
	if len(ws) == 0 {
		return
	}
	w.WriteString("\nWarnings\n")
	for _, warning := range ws {
		fmt.Fprintf(w, "  %s\n", warning)
	}
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

// approvalsFrom says how many approvals from whom: "2 approvals from
// groups sre, ops or users alice", "1 approval from nobody".
func approvalsFrom(n int, groups, users []string) string {
	var who []string
	if len(groups) > 0 {
		who = append(who, "groups "+strings.Join(groups, ", "))
	}
	if len(users) > 0 {
		who = append(who, "users "+strings.Join(users, ", "))
	}
	if len(who) == 0 {
		who = []string{"nobody"}
	}
	plural := "s"
	if n == 1 {
		plural = ""
	}
	return fmt.Sprintf("%d approval%s from %s", n, plural, strings.Join(who, " or "))
}

func groupsOrNone(gs []string) string {
	if len(gs) == 0 {
		return "no groups"
	}
	return "groups " + strings.Join(gs, ", ")
}

// RedactURL keeps a URL's scheme and host; its user, path and query may
// carry tokens (Slack incoming webhooks put theirs in the path). Every
// summary of the configuration shows webhook URLs this way.
func RedactURL(raw string) string {
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

// actionRequire lists an action's approvers.require rules.
func (w *summaryWriter) actionRequire(rules []RequireConfig) {
	label := "require"
	for _, r := range rules {
		w.line(label, "%d from %s (one approval counts toward one rule)", max(r.Min, 1), strings.Join(distinctNonEmpty(r.Groups), " or "))
		label = ""
	}
}

// actionWindows lists an action's windows and freezes, as policy explain
// shows them.
func (w *summaryWriter) actionWindows(a ActionConfig) {
	label := "windows"
	for _, wc := range a.Windows {
		text := fmt.Sprintf("%s %s-%s %s", strings.Join(wc.Days, ","), wc.From, wc.To, wc.TZ)
		if pw, err := buildWindow(wc); err == nil {
			text = pw.String()
		}
		w.line(label, "%s", text)
		label = ""
	}
	label = "freeze"
	for _, f := range a.Freeze {
		from, err1 := parseFreezeTime(f.From)
		to, err2 := parseFreezeTime(f.To)
		text := policy.Freeze{From: from, To: to, Reason: f.Reason}.String()
		if err1 != nil || err2 != nil {
			text = f.From + " to " + f.To
		}
		w.line(label, "%s", text)
		label = ""
	}
}

// actionRemind says how an action's pending requests are reminded and
// escalated, and whether the requester is told the decision.
func (w *summaryWriter) actionRemind(a ActionConfig) {
	if r := a.Remind; r != nil {
		plural := "s"
		if r.Max == 1 {
			plural = ""
		}
		w.line("reminds", "every %s, at most %d time%s, in the card's thread", FormatDuration(r.Every), r.Max, plural)
	}
	if e := a.Escalate; e != nil {
		var where []string
		if len(e.Notify.Slack) > 0 {
			where = append(where, "slack "+strings.Join(e.Notify.Slack, ", "))
		}
		if len(e.Notify.Teams) > 0 {
			where = append(where, "teams "+strings.Join(e.Notify.Teams, ", "))
		}
		w.line("escalates", "after %s to %s", FormatDuration(e.After), strings.Join(where, "; "))
	}
	if a.Notify.Requester == nil || *a.Notify.Requester {
		w.line("requester", "told the decision in a message to their linked chat accounts")
	} else {
		w.line("requester", "not told the decision (notify.requester is false)")
	}
}

// actionBreakGlass says who may break glass on an action, and who reviews
// it how soon.
func (w *summaryWriter) actionBreakGlass(bg *BreakGlassConfig) {
	if bg == nil {
		return
	}
	w.line("break-glass", "requesters with token groups %s: approved at once, reviewed afterwards", strings.Join(bg.Groups, ", "))
	if rv := bg.Review; rv != nil {
		w.more("review: %s, within %s", approvalsFrom(rv.MinApprovals, rv.Groups, rv.Users), FormatDuration(bg.Within))
	}
}
