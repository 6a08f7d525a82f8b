package slackbot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot/cards"
	"github.com/signoff-dev/signoff/bot/chatflow"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
)

// SlashCommand is the command the Slack app declares.
const SlashCommand = "/signoff"

// maxPendingListed caps the requests /signoff pending lists.
const maxPendingListed = 20

const commandHelp = "*/signoff* commands:\n" +
	"• `/signoff link`: link your Slack account to your company sign-in (needed once before your votes count)\n" +
	"• `/signoff whoami`: show the identity your Slack account is linked to\n" +
	"• `/signoff pending`: list the pending requests you may approve"

// handleCommands serves POST /slack/commands (the /signoff slash command).
func (b *Bot) handleCommands(w http.ResponseWriter, r *http.Request) {
	const source = "POST " + CommandsPath
	body, ok := b.verifiedBody(w, r, source)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		chatflow.WriteError(w, http.StatusBadRequest, "bad_payload", "the body is not a form")
		return
	}
	if form.Get("ssl_check") == "1" {
		w.WriteHeader(http.StatusOK)
		return
	}
	parse, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, CommandsPath, bytes.NewReader(body))
	parse.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cmd, err := slack.SlashCommandParse(parse)
	if err != nil {
		chatflow.WriteError(w, http.StatusBadRequest, "bad_payload", "the slash command could not be read")
		return
	}
	if !b.admit(w, r, cmd.TeamID, cmd.EnterpriseID, source) {
		return
	}
	if immediate := b.acceptCommand(cmd, source); immediate != "" {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(mustJSON(map[string]string{"response_type": slack.ResponseTypeEphemeral, "text": immediate}))
		return
	}
	w.WriteHeader(http.StatusOK)
}

// acceptCommand starts the work a slash command asks for. When the answer
// needs no work (help, an unknown subcommand) it returns it, to be sent
// with the acknowledgement; else it returns "" and answers privately later.
//
// A slash command names only the team it was typed in (team_id), not the
// team of its user, so before the work runs users.info tells whether the
// user belongs to signoff's organisation; an account of another one (Slack
// Connect) is refused (commandFromMember). source names the transport in
// that audit record.
func (b *Bot) acceptCommand(cmd slack.SlashCommand, source string) string {
	fields := strings.Fields(cmd.Text)
	sub := ""
	if len(fields) > 0 {
		sub = strings.ToLower(fields[0])
	}
	c := click{team: cmd.TeamID, user: cmd.UserID, channel: cmd.ChannelID, responseURL: cmd.ResponseURL, callbackID: cmd.TriggerID}
	var work func(ctx context.Context, c click)
	switch sub {
	case "link":
		work = b.commandLink
	case "whoami":
		work = b.commandWhoami
	case "pending":
		work = b.commandPending
	case "", "help":
		return commandHelp
	default:
		return "Unknown subcommand `" + escapeText(fitPlain(cards.OneLine(sub), 50)) + "`.\n" + commandHelp
	}
	if c.user == "" {
		return "This command needs a Slack user."
	}
	// Over the per-account limit the refusal goes with the
	// acknowledgement; help and unknown subcommands above do no work and
	// do not count.
	if msg := b.opts.Clicks.Allow(Platform, c.team, c.user); msg != "" {
		return ":hourglass: " + escapeText(msg)
	}
	if !b.spawn(func(ctx context.Context) {
		if b.commandFromMember(ctx, c, source) {
			work(ctx, c)
		}
	}) {
		return "signoff is restarting; try again in a moment."
	}
	return ""
}

// commandLink sends a fresh sign-in link.
func (b *Bot) commandLink(ctx context.Context, c click) {
	u, err := b.res.Begin(ctx, c.platformUser())
	if err != nil {
		b.log.Error("could not create a sign-in link", "user", c.user, "team", c.team, "err", err)
		b.reply(ctx, c, ":warning: A sign-in link could not be created right now. Try again in a minute.")
		return
	}
	b.reply(ctx, c, linkText("Link your Slack account to your company sign-in so that your votes count.", u))
}

// commandWhoami describes the account's link as stored: identity, groups,
// and how old the link and the group check are.
func (b *Bot) commandWhoami(ctx context.Context, c click) {
	l, err := b.svc.Link(ctx, Platform, c.team, c.user)
	if errors.Is(err, approvals.ErrNotLinked) {
		b.reply(ctx, c, "Your Slack account is not linked. Run `/signoff link` to link it to your company sign-in.")
		return
	}
	if err != nil {
		b.log.Error("could not read a link", "user", c.user, "err", err)
		b.reply(ctx, c, ":warning: Your link could not be read right now. Try again in a minute.")
		return
	}
	now := b.clock.Now()
	who := l.Email
	if who == "" {
		who = l.Name
	}
	if who == "" {
		who = l.Subject
	}
	var s strings.Builder
	fmt.Fprintf(&s, "Your Slack account is linked to *%s* (subject `%s` at %s).\n", escapeText(who), escapeText(l.Subject), escapeText(l.Issuer))
	fmt.Fprintf(&s, "Linked %s (%s ago); groups last confirmed by the identity provider %s ago", slackDate(l.LinkedAt), age(now.Sub(l.LinkedAt)), age(now.Sub(l.VerifiedAt)))
	if len(l.Groups) > 0 {
		fmt.Fprintf(&s, ": %s", escapeText(strings.Join(l.Groups, ", ")))
	}
	s.WriteString(".")
	if l.Stale {
		fmt.Fprintf(&s, "\n:warning: The link is no longer valid (%s); run `/signoff link` to link again.", escapeText(l.StaleReason))
	}
	b.reply(ctx, c, fitEscapedMrkdwn(s.String(), 3000, "…"))
}

// commandPending lists the pending requests the account's identity may
// approve (per the policy) and has not voted on.
func (b *Bot) commandPending(ctx context.Context, c click) {
	id, err := b.res.Resolve(ctx, c.platformUser())
	if err != nil {
		b.identityHint(ctx, c, err)
		return
	}
	reqs, err := b.svc.List(ctx, approvals.RequestFilter{States: []approvals.State{approvals.StatePending}})
	if err != nil {
		b.log.Error("could not list pending requests", "err", err)
		b.reply(ctx, c, ":warning: The pending requests could not be read right now. Try again in a minute.")
		return
	}
	person := id.Person() // as the vote check judges it, idp.person_claims included
	now := b.clock.Now()
	var mine []approvals.Request
	for _, r := range reqs {
		a, err := b.svc.Policy().Action(r.Action)
		if err != nil || !a.MayApprove(person) || !now.Before(r.ExpiresAt) {
			continue
		}
		if !a.Approvers.AllowSelfApproval && policy.IsSelf(r.Requester.Person, person) {
			continue
		}
		if slices.ContainsFunc(r.Votes, func(v approvals.Vote) bool { return v.Approver.Issuer == id.Issuer && v.Approver.Subject == id.Subject }) {
			continue
		}
		mine = append(mine, r)
	}
	if len(mine) == 0 {
		b.reply(ctx, c, "No pending request is waiting for your approval.")
		return
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%d pending request%s you may approve:", len(mine), cards.Plural(len(mine)))
	for i, r := range mine {
		if i == maxPendingListed {
			fmt.Fprintf(&s, "\n…and %d more.", len(mine)-i)
			break
		}
		approved := cards.Approvals(r)
		fmt.Fprintf(&s, "\n• *%s* `%s` by %s, %d of %d approvals, expires %s",
			escapeText(fitPlain(r.Action, 100)), escapeText(r.ID), escapeText(cards.OneLine(fitPlain(cards.RequesterName(r.Requester), 100))),
			approved, r.MinApprovals, slackDate(r.ExpiresAt))
		for _, card := range r.Cards {
			if card.Platform == Platform && isConversationID(card.Conversation) {
				fmt.Fprintf(&s, " in <#%s>", card.Conversation)
				break
			}
		}
	}
	b.reply(ctx, c, fitEscapedMrkdwn(s.String(), 3000, "\n…"))
}

// identityHint answers a command whose account needs (re-)linking; unlike
// a vote, nothing is audited: no vote was attempted.
func (b *Bot) identityHint(ctx context.Context, c click, err error) {
	var lr *linkflow.LinkRequiredError
	if errors.As(err, &lr) {
		b.reply(ctx, c, linkText(lr.Message, lr.URL))
		return
	}
	b.log.Warn("could not resolve a slack account's identity", "user", c.user, "team", c.team, "err", err)
	b.reply(ctx, c, ":warning: Your identity could not be confirmed with the identity provider right now. Try again in a minute.")
}

// mustJSON encodes v, which is always encodable.
func mustJSON(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("slackbot: encode %T: %v", v, err))
	}
	return out
}

// isConversationID reports whether s looks like a Slack conversation id,
// safe to render as <#id>.
func isConversationID(s string) bool {
	if len(s) < 2 || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// age renders a duration for people: "3d", "5h", "12m".
func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	default:
		return "less than a minute"
	}
}
