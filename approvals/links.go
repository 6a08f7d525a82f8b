package approvals

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/storage"
)

// ErrNotLinked means the chat account has no link to an IdP identity; a
// vote made through a link that went away before it was stored
// (VoteInput.LinkedAccount) is refused with it too.
var ErrNotLinked = errors.New("chat account is not linked")

// SaveLink stores a verified link of a chat account to an IdP identity,
// with its audit records and the notices to the chat accounts involved, in
// one transaction. via names the conversation the account clicked in (for
// platforms that need one to write to the person; may be empty).
//
// A link that replaces one to another identity is audited as
// identity.unlinked then identity.linked; re-linking the same identity is
// audited as identity.linked again (a fresh sign-in). One identity links
// at most one chat account per platform and workspace: a link of another
// account in the same workspace to the same identity is removed, audited
// as identity.unlinked with the account that replaced it, and that account
// is told.
func (s *Service) SaveLink(ctx context.Context, l storage.IdentityLink, via string) error {
	if via != "" {
		l.Conversation = via
	}
	err := s.update(ctx, func(tx storage.Tx) error {
		prev, err := tx.Link(l.Platform, l.Workspace, l.PlatformUser)
		switch {
		case err == nil:
			if prev.Issuer != l.Issuer || prev.Subject != l.Subject {
				if err := s.appendAudit(tx, linkRecord(audit.TypeIdentityUnlinked, prev, "replaced by a new link")); err != nil {
					return err
				}
			}
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		same, err := tx.Links(storage.LinkFilter{Platform: l.Platform, Workspace: l.Workspace, Subject: l.Subject})
		if err != nil {
			return fmt.Errorf("find other links of %s: %w", l.Subject, err)
		}
		for _, o := range same {
			if o.Issuer != l.Issuer || o.PlatformUser == l.PlatformUser {
				continue
			}
			if err := tx.DeleteLink(o.Platform, o.Workspace, o.PlatformUser); err != nil {
				return fmt.Errorf("remove the replaced link of %s: %w", o.PlatformUser, err)
			}
			rec := linkRecord(audit.TypeIdentityUnlinked, o, "replaced: the same identity linked another chat account in this workspace")
			rec.Data["replaced_by"] = l.PlatformUser
			if err := s.appendAudit(tx, rec); err != nil {
				return err
			}
			if err := s.queueNotice(tx, o.Platform, AccountNotice{Workspace: o.Workspace, User: o.PlatformUser, Conversation: o.Conversation, Text: fmt.Sprintf(
				"signoff: this chat account is no longer linked to %s. That identity was just linked to another account in this workspace (%s), and an identity votes through one chat account only. If that was not you, tell the people who run signoff.",
				identityName(l), l.PlatformUser),
				Public: "signoff: a chat account that voted here was unlinked because its company identity was just linked to another chat account. If that was not you, tell the people who run signoff.",
			}); err != nil {
				return err
			}
		}
		if err := tx.PutLink(l); err != nil {
			return fmt.Errorf("store link: %w", err)
		}
		rec := linkRecord(audit.TypeIdentityLinked, l, "")
		if l.MatchedBy != "" {
			rec.Data["matched_by"] = l.MatchedBy
		}
		if err := s.appendAudit(tx, rec); err != nil {
			return err
		}
		return s.queueNotice(tx, l.Platform, AccountNotice{Workspace: l.Workspace, User: l.PlatformUser, Conversation: via, Text: fmt.Sprintf(
			"signoff: this chat account is now linked to %s (signed in at %s). Your Approve and Deny clicks count as that identity. If you did not just sign in, tell the people who run signoff at once.",
			identityName(l), l.Issuer),
			Public: "signoff: a chat account that voted here was just linked to its owner's company identity. If you did not link yours, tell the people who run signoff.",
		})
	})
	if err != nil {
		return fmt.Errorf("link %s user %s in %s: %w", l.Platform, l.PlatformUser, l.Workspace, err)
	}
	s.log.Info("identity linked", "platform", l.Platform, "workspace", l.Workspace, "platform_user", l.PlatformUser, "subject", l.Subject, "matched_by", l.MatchedBy)
	return nil
}

// RefuseLink records a refused binding: an identity.link_refused audit
// record naming both sides (never a token) and a notice to the chat
// account, in one transaction. Nothing is linked.
func (s *Service) RefuseLink(ctx context.Context, r identity.LinkRefusal) error {
	acct, who := r.Account, r.Identity
	err := s.update(ctx, func(tx storage.Tx) error {
		data := map[string]any{"reason": clip(string(r.Reason)), "message": r.Message}
		if r.AccountEmail != "" {
			data["chat_email"] = clip(r.AccountEmail)
		}
		if r.AccountName != "" {
			data["chat_name"] = clip(r.AccountName)
		}
		rec := audit.Record{
			Type:  audit.TypeIdentityLinkRefused,
			Actor: actorOf(who, acct),
			Data:  data,
		}
		if err := s.appendAudit(tx, rec); err != nil {
			return err
		}
		return s.queueNotice(tx, acct.Platform, AccountNotice{Workspace: acct.Workspace, User: acct.User, Conversation: r.Conversation, Text: fmt.Sprintf(
			"signoff: a sign-in as %s tried to link this chat account and was refused: %s. Nothing was linked. Sign-in links work only for the person who owns the chat account; if you did not pass your link on, tell the people who run signoff.",
			cmp.Or(who.Email, who.Name, who.Subject), r.Message),
			Public: "signoff: a sign-in link meant for a chat account here was completed by someone else and refused; nothing was linked. Sign-in links work only for the person they were sent to.",
		})
	})
	if err != nil {
		return fmt.Errorf("record refused link of %s user %s: %w", acct.Platform, acct.User, err)
	}
	s.log.Warn("identity link refused", "platform", acct.Platform, "workspace", acct.Workspace, "platform_user", acct.User, "subject", who.Subject, "reason", r.Reason)
	return nil
}

// identityName names a link's identity for people: email, else name,
// else subject.
func identityName(l storage.IdentityLink) string {
	return cmp.Or(l.Email, l.PreferredUsername, l.Name, l.Subject)
}

// RefreshLink stores what a token refresh at the IdP confirmed (groups,
// verified_at, a rotated refresh token). When the groups changed, an
// identity.refreshed audit record says so.
func (s *Service) RefreshLink(ctx context.Context, l storage.IdentityLink) error {
	err := s.update(ctx, func(tx storage.Tx) error {
		prev, err := tx.Link(l.Platform, l.Workspace, l.PlatformUser)
		if err != nil {
			return err
		}
		if prev.Issuer != l.Issuer || prev.Subject != l.Subject {
			return fmt.Errorf("refresh would change the linked identity: %w", storage.ErrConflict)
		}
		if prev.Stale {
			// Marked stale while the refresh was under way: a refresh
			// read before that must not bring the link back.
			return fmt.Errorf("the link went stale meanwhile (%s): %w", prev.StaleReason, storage.ErrConflict)
		}
		if err := tx.PutLink(l); err != nil {
			return err
		}
		if !slices.Equal(prev.Groups, l.Groups) {
			rec := linkRecord(TypeIdentityRefreshed, l, "")
			rec.Data["previous_groups"] = stringsAny(prev.Groups)
			return s.appendAudit(tx, rec)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("refresh link of %s user %s: %w", l.Platform, l.PlatformUser, err)
	}
	return nil
}

// TypeIdentityRefreshed records groups that changed on a refresh at the IdP.
const TypeIdentityRefreshed = "identity.refreshed"

// TypeIdentityStale records a link the IdP stopped backing.
const TypeIdentityStale = "identity.stale"

// MarkLinkStale records that the IdP no longer backs a link (a refresh was
// refused: user disabled, consent revoked): votes through it are refused
// until the person links again.
func (s *Service) MarkLinkStale(ctx context.Context, platform, workspace, platformUser, reason string) error {
	err := s.update(ctx, func(tx storage.Tx) error {
		l, err := tx.Link(platform, workspace, platformUser)
		if err != nil {
			return err
		}
		if l.Stale {
			return nil
		}
		l.Stale, l.StaleReason, l.RefreshToken = true, reason, nil
		if err := tx.PutLink(l); err != nil {
			return err
		}
		return s.appendAudit(tx, linkRecord(TypeIdentityStale, l, reason))
	})
	if err != nil {
		return fmt.Errorf("mark link of %s user %s stale: %w", platform, platformUser, err)
	}
	return nil
}

// Unlink removes a chat account's link (an operator's revoke, or the
// person's own), audited as identity.unlinked with the reason.
func (s *Service) Unlink(ctx context.Context, platform, workspace, platformUser, reason string) error {
	_, err := s.UnlinkBy(ctx, platform, workspace, platformUser, reason, nil)
	return err
}

// UnlinkBy is Unlink on someone's word: the identity.unlinked record names
// by as its actor (an admin revoking the link through the API) and holds
// the link's chat account and identity in data ("link"). A nil by makes
// the link's own identity the actor, as Unlink does. It returns the link
// as it was; an account without a link is an error wrapping ErrNotLinked.
// The next click of that account finds no link (the Linker reads the
// store on every click), on every replica.
func (s *Service) UnlinkBy(ctx context.Context, platform, workspace, platformUser, reason string, by *audit.Actor) (storage.IdentityLink, error) {
	var removed storage.IdentityLink
	err := s.update(ctx, func(tx storage.Tx) error {
		removed = storage.IdentityLink{}
		l, err := tx.Link(platform, workspace, platformUser)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%w: no link for %s user %s in %s", ErrNotLinked, platform, platformUser, workspace)
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteLink(platform, workspace, platformUser); err != nil {
			return err
		}
		rec := linkRecord(audit.TypeIdentityUnlinked, l, reason)
		if by != nil {
			linked := rec.Actor
			actor := *by
			rec.Actor = &actor
			rec.Data["link"] = map[string]any{
				"platform": linked.Platform, "workspace": linked.Workspace, "platform_user": linked.PlatformUser,
				"issuer": linked.Issuer, "subject": linked.Subject, "email": linked.Email, "name": linked.Name,
			}
		}
		if err := s.appendAudit(tx, rec); err != nil {
			return err
		}
		removed = l
		return nil
	})
	if err != nil {
		return storage.IdentityLink{}, fmt.Errorf("unlink %s user %s: %w", platform, platformUser, err)
	}
	if by != nil {
		s.log.Info("identity unlinked by an admin", "platform", platform, "workspace", workspace, "platform_user", platformUser, "subject", removed.Subject, "admin", by.Subject)
	}
	removed.RefreshToken = nil
	return removed, nil
}

// Link returns a chat account's link, or an error wrapping ErrNotLinked.
func (s *Service) Link(ctx context.Context, platform, workspace, platformUser string) (storage.IdentityLink, error) {
	l, err := viewValue(ctx, s.store, func(tx storage.ReadTx) (storage.IdentityLink, error) {
		return tx.Link(platform, workspace, platformUser)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return l, fmt.Errorf("%w: %s user %s in %s", ErrNotLinked, platform, platformUser, workspace)
	}
	if err != nil {
		return l, fmt.Errorf("read link of %s user %s: %w", platform, platformUser, err)
	}
	return l, nil
}

// Links lists identity links.
func (s *Service) Links(ctx context.Context, f storage.LinkFilter) ([]storage.IdentityLink, error) {
	out, err := viewValue(ctx, s.store, func(tx storage.ReadTx) ([]storage.IdentityLink, error) {
		return tx.Links(f)
	})
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	return out, nil
}

// linkRecord describes a link in the audit log: who, where, which groups;
// never the refresh token.
func linkRecord(typ string, l storage.IdentityLink, reason string) audit.Record {
	data := map[string]any{
		"groups":      stringsAny(l.Groups),
		"verified_at": audit.FormatTime(l.VerifiedAt),
	}
	if reason != "" {
		data["reason"] = reason
	}
	if !l.AuthTime.IsZero() {
		data["auth_time"] = audit.FormatTime(l.AuthTime)
	}
	if l.ACR != "" {
		data["acr"] = l.ACR
	}
	if len(l.AMR) > 0 {
		data["amr"] = stringsAny(l.AMR)
	}
	return audit.Record{
		Type:  typ,
		Actor: actorOf(identity.FromLink(l), identity.LinkAccount(l)),
		Data:  data,
	}
}
