package approvals

import (
	"context"
	"errors"
	"fmt"

	"github.com/signoff-dev/signoff/storage"
)

// RememberConversations stores conversation references a verified platform
// activity carried (Teams: each conversation's service URL), in one
// transaction. A reference stored with the same service URL, tenant and
// name (or given without a name) is left as it is; a reference given
// without a name keeps the stored one. Each written reference is stamped
// with the service's clock.
func (s *Service) RememberConversations(ctx context.Context, cs []Conversation) error {
	if len(cs) == 0 {
		return nil
	}
	now := s.clock.Now().UTC()
	return s.store.Update(ctx, func(tx storage.Tx) error {
		for _, c := range cs {
			prev, err := tx.Conversation(c.Platform, c.ID)
			switch {
			case err == nil:
				if prev.ServiceURL == c.ServiceURL && prev.TenantID == c.TenantID && (c.Name == "" || prev.Name == c.Name) {
					continue
				}
				if c.Name == "" {
					c.Name = prev.Name
				}
			case !errors.Is(err, storage.ErrNotFound):
				return fmt.Errorf("read conversation %s: %w", c.ID, err)
			}
			c.UpdatedAt = now
			if err := tx.PutConversation(c); err != nil {
				return fmt.Errorf("store conversation %s: %w", c.ID, err)
			}
		}
		return nil
	})
}

// Conversation returns the stored reference of a platform's conversation;
// ok is false when none is stored.
func (s *Service) Conversation(ctx context.Context, platform, id string) (c Conversation, ok bool, err error) {
	c, err = viewValue(ctx, s.store, func(tx storage.ReadTx) (Conversation, error) {
		return tx.Conversation(platform, id)
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return Conversation{}, false, nil
	case err != nil:
		return Conversation{}, false, fmt.Errorf("read conversation %s: %w", id, err)
	}
	return c, true, nil
}
