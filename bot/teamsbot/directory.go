package teamsbot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/signoff-dev/signoff/internal/text"
	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// The Bot is the Linker's directory of Teams accounts.
var _ linkflow.AccountDirectory = (*Bot)(nil)

// maxConversationIDLen bounds the conversation id a click may leave on a
// sign-in attempt (Teams' ids are far shorter). The id goes into audit
// records, and an unbounded one could make a record longer than any
// verifier accepts.
const maxConversationIDLen = 512

// maxMemberFieldLen bounds each field of a member lookup answer that
// signoff keeps (names and addresses go into pages and audit records).
const maxMemberFieldLen = 256

// Errors of account lookups and notices.
var (
	// errNoConversation: nothing says where the account clicked, and
	// Teams has no way to name or write to an account outside a
	// conversation.
	errNoConversation = errors.New("no Teams conversation is known for the account")
	// errTenantNotServed: the account's tenant is not in
	// teams.tenant_ids.
	errTenantNotServed = errors.New("the tenant is not in teams.tenant_ids")
)

// teamsMember is one member of a conversation as the Bot Connector's member
// lookup answers (Microsoft's TeamsChannelAccount). Microsoft's REST
// reference names the Microsoft Entra object id "objectId", the Bot
// Framework SDKs' ChannelAccount "aadObjectId": both are read.
type teamsMember struct {
	// ID is the Teams user id ("29:…").
	ID                string `json:"id"`
	Name              string `json:"name"`
	ObjectID          string `json:"objectId"`
	AADObjectID       string `json:"aadObjectId"`
	GivenName         string `json:"givenName"`
	Surname           string `json:"surname"`
	Email             string `json:"email"`
	UserPrincipalName string `json:"userPrincipalName"`
	TenantID          string `json:"tenantId"`
	UserRole          string `json:"userRole"`
}

// LookupAccount asks Teams who owns the account p, with the Bot Connector's
// member lookup (GET {serviceUrl}/v3/conversations/{id}/members/{userId})
// in the conversation the account last clicked in (p.Conversation, which a
// click puts on the sign-in attempt). The member id is the account's
// Microsoft Entra object id (p.UserID): Teams looks a member up by its
// Teams user id, its UPN or its object id. The bot's token goes only to
// the conversation's service URL (or teams.service_url), as for cards.
// The lookup needs no Microsoft Graph permission: it reads the roster of
// a conversation the bot is in.
//
// The answer counts only when it is about p: its object id must equal
// p.UserID and its tenant, when it names one, p.Workspace; else the error
// wraps linkflow.ErrAccountNotFound, as it does when Teams does not know the
// member (404). A 429, a 5xx, a network failure or a failure to get the
// bot's token wraps linkflow.ErrDirectoryUnavailable. Without a conversation
// the error tells the person to click a card again.
func (b *Bot) LookupAccount(ctx context.Context, p linkflow.PlatformUser) (linkflow.ChatAccount, error) {
	switch {
	case p.Platform != Platform:
		return linkflow.ChatAccount{}, fmt.Errorf("teamsbot: %s is not a Microsoft Teams account", p)
	case p.UserID == "":
		return linkflow.ChatAccount{}, fmt.Errorf("teamsbot: the Teams account to look up has no Microsoft Entra object id")
	case b.tenant(p.Workspace) == "":
		return linkflow.ChatAccount{}, fmt.Errorf("teamsbot: Teams account %s belongs to tenant %q: %w", p.UserID, p.Workspace, errTenantNotServed)
	case p.Conversation == "":
		return linkflow.ChatAccount{}, fmt.Errorf("teamsbot: signoff does not know where Teams account %s clicked, so it cannot ask Teams who owns it (%w): click Approve or Deny on a signoff card in Teams again and use the new sign-in link", p.UserID, errNoConversation)
	}
	// A thread's id (";messageid=…") is not a roster: ask the channel or
	// chat. A channel's roster may not list every member of its team
	// (Microsoft's SDKs ask the team), so when the channel does not know
	// the account and the team of the channel is known, the team is asked.
	conv := baseConversationID(p.Conversation)
	asks := []string{conv}
	if team := b.convs.teamOf(conv); team != "" {
		asks = append(asks, team)
	}
	var (
		m   teamsMember
		err error
	)
	for i, c := range asks {
		conv = c
		m, err = b.lookupMember(ctx, p, c)
		var ae *apiError
		if err == nil || i == len(asks)-1 || !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			break
		}
	}
	if err != nil {
		return linkflow.ChatAccount{}, err
	}
	acct, err := memberAccount(p, m)
	if err != nil {
		b.log.Warn("the Bot Connector's member lookup answered for another account; not used", "conversation", conv, "user", p.UserID, "tenant", p.Workspace, "err", err)
	}
	return acct, err
}

// lookupMember asks conversation's roster for p (by its object id), through
// the conversation's service URL.
func (b *Bot) lookupMember(ctx context.Context, p linkflow.PlatformUser, conversation string) (teamsMember, error) {
	serviceURL, err := b.serviceURLFor(ctx, conversation, "")
	switch {
	case errors.Is(err, errNoServiceURL):
		return teamsMember{}, fmt.Errorf("teamsbot: look up Teams account %s: %w", p.UserID, err)
	case err != nil:
		return teamsMember{}, fmt.Errorf("teamsbot: look up Teams account %s: %w: %w", p.UserID, linkflow.ErrDirectoryUnavailable, err)
	}
	m, err := b.api.member(ctx, serviceURL, conversation, p.UserID)
	if err != nil {
		return teamsMember{}, memberLookupError(p, conversation, err)
	}
	return m, nil
}

// memberLookupError says what a failed member lookup means for the Linker.
func memberLookupError(p linkflow.PlatformUser, conv string, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return fmt.Errorf("teamsbot: look up Teams account %s: %w: %w", p.UserID, linkflow.ErrDirectoryUnavailable, err)
	}
	switch {
	case ae.Op == opToken || ae.Status == 0 || ae.Status == http.StatusUnauthorized ||
		ae.Status == http.StatusTooManyRequests || ae.Status >= 500:
		hint := "try again in a minute"
		if ae.RetryAfter > 0 {
			hint = fmt.Sprintf("Teams asked to wait %s", ae.RetryAfter)
		}
		return fmt.Errorf("teamsbot: look up Teams account %s (%s): %w: %w", p.UserID, hint, linkflow.ErrDirectoryUnavailable, err)
	case ae.Status == http.StatusNotFound:
		return fmt.Errorf("teamsbot: Teams does not know account %s in conversation %s: %w: %w", p.UserID, conv, linkflow.ErrAccountNotFound, err)
	}
	return fmt.Errorf("teamsbot: Teams refused to look up account %s in conversation %s: %w (is the signoff app still installed there? click Approve or Deny on a signoff card again)", p.UserID, conv, err)
}

// memberAccount maps a member lookup's answer to the account it describes,
// after checking that it describes p: the same Microsoft Entra object id
// and, when the answer names one, the same tenant.
func memberAccount(p linkflow.PlatformUser, m teamsMember) (linkflow.ChatAccount, error) {
	oid, aad := strings.TrimSpace(m.ObjectID), strings.TrimSpace(m.AADObjectID)
	if oid != "" && aad != "" && !strings.EqualFold(oid, aad) {
		return linkflow.ChatAccount{}, fmt.Errorf("teamsbot: Teams answered the lookup of account %s with two object ids (%q and %q): %w", p.UserID, text.TruncateRunes(oid, 64), text.TruncateRunes(aad, 64), linkflow.ErrAccountNotFound)
	}
	obj := cmp.Or(oid, aad)
	if !strings.EqualFold(obj, p.UserID) {
		return linkflow.ChatAccount{}, fmt.Errorf("teamsbot: Teams answered the lookup of account %s about another account (Microsoft Entra object id %q): %w", p.UserID, text.TruncateRunes(obj, 64), linkflow.ErrAccountNotFound)
	}
	if t := strings.TrimSpace(m.TenantID); t != "" && !strings.EqualFold(t, p.Workspace) {
		return linkflow.ChatAccount{}, fmt.Errorf("teamsbot: Teams says account %s belongs to tenant %q, not %q where it clicked: %w", p.UserID, text.TruncateRunes(t, 64), p.Workspace, linkflow.ErrAccountNotFound)
	}
	return linkflow.ChatAccount{
		DisplayName: memberField(cmp.Or(strings.TrimSpace(m.Name), strings.TrimSpace(m.GivenName+" "+m.Surname))),
		Email:       memberField(m.Email),
		UPN:         memberField(m.UserPrincipalName),
		ObjectID:    memberField(obj),
	}, nil
}

// memberField cleans one field of a member lookup's answer for keeping.
func memberField(s string) string {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return text.TruncateRunes(s, maxMemberFieldLen)
}
