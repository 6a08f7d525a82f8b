package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

// ErrNotLinked means the chat account has no link to an IdP identity.
var ErrNotLinked = errors.New("chat account is not linked")

// SaveLink stores a verified link of a chat account to an IdP identity,
// with its audit record, in one transaction. A link that replaces one to
// another identity is audited as identity.unlinked then identity.linked;
// re-linking the same identity is audited as identity.linked again (a
// fresh sign-in).
func (s *Service) SaveLink(ctx context.Context, l storage.IdentityLink) error {
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
		if err := tx.PutLink(l); err != nil {
			return fmt.Errorf("store link: %w", err)
		}
		return s.appendAudit(tx, linkRecord(audit.TypeIdentityLinked, l, ""))
	})
	if err != nil {
		return fmt.Errorf("link %s user %s in %s: %w", l.Platform, l.PlatformUser, l.Workspace, err)
	}
	s.log.Info("identity linked", "platform", l.Platform, "workspace", l.Workspace, "platform_user", l.PlatformUser, "subject", l.Subject)
	return nil
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
	err := s.update(ctx, func(tx storage.Tx) error {
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
		return s.appendAudit(tx, linkRecord(audit.TypeIdentityUnlinked, l, reason))
	})
	if err != nil {
		return fmt.Errorf("unlink %s user %s: %w", platform, platformUser, err)
	}
	return nil
}

// Link returns a chat account's link, or an error wrapping ErrNotLinked.
func (s *Service) Link(ctx context.Context, platform, workspace, platformUser string) (storage.IdentityLink, error) {
	var l storage.IdentityLink
	err := s.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		l, err = tx.Link(platform, workspace, platformUser)
		return err
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
	var out []storage.IdentityLink
	err := s.store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		out, err = tx.Links(f)
		return err
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
		Type: typ,
		Actor: &audit.Actor{
			Issuer: l.Issuer, Subject: l.Subject, Name: l.Name, Email: l.Email,
			Platform: l.Platform, Workspace: l.Workspace, PlatformUser: l.PlatformUser,
		},
		Data: data,
	}
}
