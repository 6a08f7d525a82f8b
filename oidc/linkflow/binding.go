package linkflow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/internal/platform"
	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
	"github.com/signoff-dev/signoff/storage"
)

// Link match modes (idp.link_match): how signoff proves that the person who
// signed in at the IdP owns the chat account the link was made for.
const (
	// LinkMatchEmail (the default) compares the chat platform's own record
	// of the account with the IdP's answer: the account's email (Slack
	// users.info, Teams member lookup: email or userPrincipalName) must
	// equal the IdP's email claim, which must not be marked unverified;
	// for a Teams account, the IdP's oid claim (Microsoft Entra ID) must
	// equal the account's aadObjectId whenever the IdP sends one.
	LinkMatchEmail = "email"
	// LinkMatchNone skips the proof: whoever completes a sign-in link
	// decides whom the chat account votes as. It exists for workspaces
	// whose chat accounts carry no email; signoff warns about it loudly.
	LinkMatchNone = "none"
)

// How a link's binding was proved (storage.IdentityLink.MatchedBy).
const (
	MatchedByEmail = "email"
	MatchedByOID   = "oid"
	MatchedByNone  = "none"
)

// ChatAccount is what a chat platform says about one of its accounts: its
// own record, which the person cannot change by opening someone else's
// sign-in link.
type ChatAccount struct {
	// DisplayName is the account's name as people see it ("Alice Smith").
	DisplayName string
	// Handle is the account's short name (a Slack @name), if any.
	Handle string
	// Email is the account's email address, if the platform has one.
	Email string
	// UPN is the Microsoft Entra userPrincipalName (Teams), often the
	// same as the email.
	UPN string
	// ObjectID is the Microsoft Entra object id (Teams aadObjectId).
	ObjectID string
	// WorkspaceName names the workspace or tenant, if known.
	WorkspaceName string
}

// AccountDirectory looks chat accounts up on their platform: Slack's
// users.info, the Bot Connector's member lookup. The chat adapters
// implement it; the Linker asks it before a link is saved.
type AccountDirectory interface {
	// LookupAccount returns the platform's record of the account. p's
	// Conversation names where the account was last seen (Teams needs it
	// for the member lookup). An error wrapping ErrDirectoryUnavailable
	// means the platform could not be asked right now (network, 429,
	// 5xx); ErrAccountNotFound that the platform does not know the
	// account; anything else is a refusal to say.
	LookupAccount(ctx context.Context, p PlatformUser) (ChatAccount, error)
}

// Directory errors, for errors.Is.
var (
	// ErrDirectoryUnavailable: the chat platform could not be asked who
	// owns an account right now; try again later.
	ErrDirectoryUnavailable = errors.New("chat platform unavailable")
	// ErrAccountNotFound: the chat platform does not know the account.
	ErrAccountNotFound = errors.New("chat account not found")
)

// bindingVerdict is the outcome of comparing a chat account with a
// sign-in.
type bindingVerdict struct {
	ok bool
	// code is the Refusal… reason when not ok.
	code identity.LinkRefusalReason
	// by is how it matched (MatchedBy…), when ok.
	by string
	// why says what did not match, for the page, the chat and the audit
	// log: never a token.
	why string
}

// matchAccount decides whether the chat account acct and the IdP claims c
// belong to the same person, as LinkMatchEmail describes. The IdP's email
// proves only when the IdP says it is verified (email_verified, or Entra
// ID's xms_edov when email_verified is absent: idClaims.EmailVerified);
// with assumeVerified (idp.email_verified: assumed) an email the IdP does
// not mark either way counts too.
func matchAccount(acct ChatAccount, c idClaims, assumeVerified bool) bindingVerdict {
	if c.OID != "" && acct.ObjectID != "" {
		if strings.EqualFold(strings.TrimSpace(c.OID), strings.TrimSpace(acct.ObjectID)) {
			return bindingVerdict{ok: true, by: MatchedByOID}
		}
		return bindingVerdict{code: RefusalMismatch, why: fmt.Sprintf("the identity provider's object id (oid %s) is not the chat account's Microsoft Entra object id (%s)", c.OID, acct.ObjectID)}
	}
	idpEmail := normalizeEmail(c.Email)
	if idpEmail == "" {
		return bindingVerdict{code: RefusalNoIdPEmail, why: "the identity provider sent no email for the identity that signed in, so signoff cannot tell whose chat account this is"}
	}
	switch {
	case c.EmailVerified != nil && !*c.EmailVerified:
		return bindingVerdict{code: RefusalEmailUnverif, why: fmt.Sprintf("the identity provider marks the email %s as not verified", c.Email)}
	case c.EmailVerified == nil && !assumeVerified:
		return bindingVerdict{code: RefusalEmailUnverif, why: fmt.Sprintf("the identity provider does not say that the email %s is verified (no email_verified claim), so signoff cannot use it to tell whose chat account this is: have the IdP send email_verified (Microsoft Entra ID: add the optional ID token claim xms_edov), or, if no user can set their own email at the IdP, set idp.email_verified: assumed", c.Email)}
	}
	chat := chatEmails(acct)
	if len(chat) == 0 {
		return bindingVerdict{code: RefusalNoChatEmail, why: "the chat platform has no email for this chat account, so signoff cannot tell whose it is"}
	}
	for _, e := range chat {
		if e == idpEmail {
			return bindingVerdict{ok: true, by: MatchedByEmail}
		}
	}
	return bindingVerdict{code: RefusalMismatch, why: fmt.Sprintf("the chat account's email (%s) is not the email of the identity that signed in (%s)", strings.Join(chat, " or "), idpEmail)}
}

// vouched reports whether the IdP vouches for c's email as matchAccount
// requires: email_verified true (or xms_edov), or, with assumeVerified,
// not marked either way.
func vouched(c idClaims, assumeVerified bool) bool {
	if c.EmailVerified == nil {
		return assumeVerified
	}
	return *c.EmailVerified
}

// keptEmail is the email a link keeps when a refresh or step-up sign-in
// answers c, and whether the IdP left it unvouched (EmailUnverified). A
// link proved by email names its person by an email the IdP vouched for;
// a new email replaces it only when the IdP vouches for that one too, or
// whoever may set their own email at the IdP would vote as the approver
// it names (approvers.users) from the next refresh on. Other links take
// the new email, marked unverified unless the IdP vouches for it, so it
// names the person for the self-approval check but makes them no
// approver by email.
func (l *Linker) keptEmail(link storage.IdentityLink, c idClaims) (email string, unverified bool) {
	switch {
	case c.Email == "":
		return link.Email, link.EmailUnverified
	case vouched(c, l.opts.AssumeEmailVerified):
		return c.Email, false
	case l.opts.LinkMatch == LinkMatchNone || link.MatchedBy != MatchedByEmail:
		return c.Email, true
	}
	if normalizeEmail(c.Email) != normalizeEmail(link.Email) {
		l.log.Warn("the identity provider sent a new email it does not mark verified; the link keeps its verified email",
			"platform", link.Platform, "workspace", link.Workspace, "platform_user", link.PlatformUser, "subject", link.Subject)
	}
	return link.Email, link.EmailUnverified
}

// matchLinkEmail re-checks a stored link against its chat account (an
// older link never proved, or any email-proved link at a refresh or
// step-up): the chat account's email must equal the link's.
func matchLinkEmail(acct ChatAccount, linkEmail string) bindingVerdict {
	// The link's email is compared, not proved again: it was the IdP's
	// when the link was made.
	return matchAccount(ChatAccount{Email: acct.Email, UPN: acct.UPN}, idClaims{Email: linkEmail}, true)
}

// chatEmails lists the account's distinct, normalized addresses.
func chatEmails(a ChatAccount) []string {
	var out []string
	for _, e := range []string{a.Email, a.UPN} {
		if n := normalizeEmail(e); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// normalizeEmail trims an address and lower-cases its ASCII letters; ""
// when it holds no @. Only ASCII is folded: Unicode case mapping would
// make different addresses equal (the Kelvin sign lower-cases to "k").
func normalizeEmail(e string) string {
	e = strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, strings.TrimSpace(e))
	if !strings.Contains(e, "@") {
		return ""
	}
	return e
}

// accountLabel names a chat account for people: its display name and
// handle when the platform told them, and always its id and workspace.
func accountLabel(p PlatformUser, acct ChatAccount) string {
	var b strings.Builder
	b.WriteString(platformDisplay(p.Platform) + " user ")
	switch {
	case acct.Handle != "" && acct.DisplayName != "" && acct.Handle != acct.DisplayName:
		fmt.Fprintf(&b, "%s (@%s, %s)", acct.DisplayName, acct.Handle, p.UserID)
	case acct.Handle != "":
		fmt.Fprintf(&b, "@%s (%s)", acct.Handle, p.UserID)
	case acct.DisplayName != "":
		fmt.Fprintf(&b, "%s (%s)", acct.DisplayName, p.UserID)
	default:
		b.WriteString(p.UserID)
	}
	b.WriteString(" in ")
	if acct.WorkspaceName != "" {
		fmt.Fprintf(&b, "%s (%s)", acct.WorkspaceName, p.Workspace)
	} else {
		b.WriteString(p.Workspace)
	}
	return b.String()
}

// platformDisplay is a platform's name as people write it.
func platformDisplay(name string) string {
	switch name {
	case platform.Slack:
		return "Slack"
	case platform.Teams:
		return "Microsoft Teams"
	case platform.Dev:
		return "dev console"
	}
	return name
}

// lookupAccount asks p's platform who owns the account, bounded by
// lookupTimeout. Without a directory for the platform it fails with
// RefusalNoDirectory.
func (l *Linker) lookupAccount(ctx context.Context, p PlatformUser) (ChatAccount, identity.LinkRefusalReason, error) {
	dir := l.directory(p.Platform)
	if dir == nil {
		return ChatAccount{}, RefusalNoDirectory, fmt.Errorf("signoff cannot look up %s accounts (no account directory is wired for the platform)", platformDisplay(p.Platform))
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	acct, err := dir.LookupAccount(ctx, p)
	switch {
	case err == nil:
		return acct, "", nil
	case errors.Is(err, ErrAccountNotFound):
		return acct, RefusalUnknownAccount, err
	}
	return acct, RefusalLookupFailed, err
}

// checkBinding decides whether the sign-in c may link p: with
// LinkMatchNone always (MatchedByNone); else the platform's record of p
// must match c (matchAccount). On a refusal it returns the refusal to
// record; acct is what the platform said, when it answered.
func (l *Linker) checkBinding(ctx context.Context, p PlatformUser, c idClaims) (by string, acct ChatAccount, refusal *identity.LinkRefusal) {
	if l.opts.LinkMatch == LinkMatchNone {
		return MatchedByNone, ChatAccount{}, nil
	}
	refuse := func(reason identity.LinkRefusalReason, msg string) *identity.LinkRefusal {
		return &identity.LinkRefusal{
			Account: p.Account(), Conversation: p.Conversation,
			AccountName: cmp.Or(acct.DisplayName, acct.Handle), AccountEmail: cmp.Or(acct.Email, acct.UPN),
			Identity: c.asIdentity(l.clock.Now().UTC(), l.opts.AssumeEmailVerified),
			Reason:   reason, Message: msg,
		}
	}
	acct, code, err := l.lookupAccount(ctx, p)
	if err != nil {
		switch code {
		case RefusalUnknownAccount:
			return "", acct, refuse(code, fmt.Sprintf("%s does not know this chat account any more", platformDisplay(p.Platform)))
		case RefusalNoDirectory:
			return "", acct, refuse(code, err.Error())
		}
		l.log.Warn("looking up a chat account failed; no link made", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "err", err)
		return "", acct, refuse(code, fmt.Sprintf("signoff could not ask %s who owns this chat account (%s)", platformDisplay(p.Platform), idtoken.CauseText(err)))
	}
	v := matchAccount(acct, c, l.opts.AssumeEmailVerified)
	if !v.ok {
		return "", acct, refuse(v.code, v.why)
	}
	return v.by, acct, nil
}

// unproven reports whether a link's binding was never proved the way this
// Linker proves them: made before signoff checked bindings (MatchedBy
// empty), or while idp.link_match was none.
func (l *Linker) unproven(link storage.IdentityLink) bool {
	return l.opts.LinkMatch != LinkMatchNone && (link.MatchedBy == "" || link.MatchedBy == MatchedByNone)
}

// checkLegacyBinding re-checks a link whose binding was never proved
// (unproven): the chat platform's email for the account must equal the
// email the link's identity had. A match is recorded on the link; a
// mismatch makes the link stale and asks for a new one; a failed lookup
// refuses the vote for now (fail closed) and changes nothing.
func (l *Linker) checkLegacyBinding(ctx context.Context, p PlatformUser, link storage.IdentityLink) (storage.IdentityLink, error) {
	if !l.unproven(link) {
		return link, nil
	}
	v, err := l.askChatPlatform(ctx, p, link, "older link")
	if err != nil {
		return link, err
	}
	if !v.ok {
		if _, err := l.markBindingMismatch(ctx, p, link, v, "older link"); err != nil {
			return link, err
		}
		return link, l.linkRequired(ctx, p, LinkReasonStale, bindingChangedMessage)
	}
	updated := link
	updated.MatchedBy = v.by
	if err := l.opts.Links.RefreshLink(ctx, updated); err != nil {
		return link, fmt.Errorf("oidc: record the confirmed binding of %s: %w", p, err)
	}
	l.log.Info("an older link was confirmed against its chat account", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "matched_by", v.by)
	return updated, nil
}

// bindingChangedMessage answers a click whose link no longer matches the
// chat platform's record of the account.
const bindingChangedMessage = "your account link could not be confirmed: the chat platform's record of your account does not match the identity it was linked to. Open the link to sign in again as yourself, then click again"

// recheckBinding confirms, each time a link's groups are refreshed (at
// most every GroupsMaxAge, by a click or by the sweep), that the chat
// account still belongs to the person it was linked to: the platform's
// email for it must still be the link's email. A chat account whose
// email an administrator changed (handed to someone else, renamed)
// stops voting as the person who linked it at the next refresh rather
// than never; the link is marked stale (identity.stale) and a
// *refreshRefusedError with binding set returned. A failed lookup
// changes nothing and is returned (a click is refused for now, the sweep
// tries again at its next pass).
//
// Only links proved by email are re-checked: a link proved by Entra
// object id names the Teams account's own object, which does not change
// hands; a link never proved is checked at its next click
// (checkLegacyBinding); with idp.link_match none nothing is.
func (l *Linker) recheckBinding(ctx context.Context, p PlatformUser, link storage.IdentityLink, trigger string) error {
	if l.opts.LinkMatch == LinkMatchNone || link.MatchedBy != MatchedByEmail {
		return nil
	}
	v, err := l.askChatPlatform(ctx, p, link, trigger)
	if err != nil || v.ok {
		return err
	}
	reason, err := l.markBindingMismatch(ctx, p, link, v, trigger)
	return &refreshRefusedError{reason: reason, markErr: err, binding: true}
}

// askChatPlatform looks p up at its chat platform and compares the
// account's email with the link's (matchLinkEmail). An account the
// platform does not know, or no directory to ask, is a mismatch; a
// lookup that failed otherwise is returned, logged with trigger, and
// decides nothing.
func (l *Linker) askChatPlatform(ctx context.Context, p PlatformUser, link storage.IdentityLink, trigger string) (bindingVerdict, error) {
	acct, code, err := l.lookupAccount(ctx, p)
	switch {
	case err == nil:
		return matchLinkEmail(acct, link.Email), nil
	case code == RefusalUnknownAccount || code == RefusalNoDirectory:
		return bindingVerdict{code: code, why: err.Error()}, nil
	}
	l.log.Warn("re-checking a link against its chat account failed; nothing was changed", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "trigger", trigger, "err", err)
	return bindingVerdict{}, fmt.Errorf("oidc: confirm who owns %s: %w", p, err)
}

// markBindingMismatch marks p's link stale because its chat account does
// not match it (v), and returns the reason stored. The reason names no
// address: a Teams click from an older client is answered where the
// whole channel reads it. The log holds the detail.
func (l *Linker) markBindingMismatch(ctx context.Context, p PlatformUser, link storage.IdentityLink, v bindingVerdict, trigger string) (string, error) {
	reason := "the chat platform's record of the account does not match the linked identity (" + string(v.code) + ")"
	l.log.Warn("a link does not match its chat account; marking it stale", "platform", p.Platform, "workspace", p.Workspace, "platform_user", p.UserID, "subject", link.Subject, "trigger", trigger, "why", v.why)
	if err := l.opts.Links.MarkLinkStale(ctx, p.Platform, p.Workspace, p.UserID, reason); err != nil {
		return reason, fmt.Errorf("oidc: mark mismatched link of %s stale: %w", p, err)
	}
	l.counters.markStale(StaleBindingMismatch)
	return reason, nil
}

// DirectoryFunc adapts a function to an AccountDirectory.
type DirectoryFunc func(ctx context.Context, p PlatformUser) (ChatAccount, error)

// LookupAccount calls f.
func (f DirectoryFunc) LookupAccount(ctx context.Context, p PlatformUser) (ChatAccount, error) {
	return f(ctx, p)
}

// displayLookupTTL is how long the confirmation page reuses a chat
// account's record, so that re-fetching a link (a preview crawler, a
// reload loop) costs the chat platform at most one lookup per account
// and TTL. The binding check never uses it: it always asks afresh.
const displayLookupTTL = time.Minute

// maxDisplayLookups bounds the cache of displayed accounts.
const maxDisplayLookups = 10_000

type displayedAccount struct {
	acct ChatAccount
	at   time.Time
}

// accountForDisplay returns p's record for the confirmation page: cached
// for displayLookupTTL, empty when the platform cannot say (the page then
// names the account by its ids only).
func (l *Linker) accountForDisplay(ctx context.Context, p PlatformUser) ChatAccount {
	key := p.Platform + "\x00" + p.Workspace + "\x00" + p.UserID
	now := l.clock.Now()
	l.displayMu.Lock()
	d, ok := l.displayed[key]
	l.displayMu.Unlock()
	if ok && now.Sub(d.at) < displayLookupTTL {
		return d.acct
	}
	acct, _, err := l.lookupAccount(ctx, p)
	if err != nil {
		acct = ChatAccount{}
	}
	l.displayMu.Lock()
	defer l.displayMu.Unlock()
	if len(l.displayed) >= maxDisplayLookups {
		clear(l.displayed)
	}
	l.displayed[key] = displayedAccount{acct: acct, at: now}
	return acct
}
