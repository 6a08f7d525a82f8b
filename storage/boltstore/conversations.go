package boltstore

import (
	"encoding/json"
	"fmt"

	"github.com/signoff-dev/signoff/storage"
)

// Conversation references are keyed like links: the escaped platform then
// the escaped conversation id, so one platform's ids never collide with
// another's.

// Conversation implements storage.ReadTx.
func (t *readTx) Conversation(platform, id string) (storage.Conversation, error) {
	if b := t.bucket(bucketConversations); b != nil {
		if v := b.Get(conversationKey(platform, id)); v != nil {
			var c storage.Conversation
			if err := json.Unmarshal(v, &c); err != nil {
				return storage.Conversation{}, fmt.Errorf("decode conversation %s %q: %w", platform, id, err)
			}
			return c, nil
		}
	}
	return storage.Conversation{}, fmt.Errorf("conversation %s %q: %w", platform, id, storage.ErrNotFound)
}

// PutConversation implements storage.Tx.
func (t *writeTx) PutConversation(c storage.Conversation) error {
	if c.Platform == "" || c.ID == "" {
		return fmt.Errorf("put conversation: platform and id must not be empty")
	}
	b, err := t.writeBucket(bucketConversations)
	if err != nil {
		return err
	}
	c.UpdatedAt = c.UpdatedAt.UTC()
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode conversation %s %q: %w", c.Platform, c.ID, err)
	}
	if err := b.Put(conversationKey(c.Platform, c.ID), v); err != nil {
		return fmt.Errorf("put conversation %s %q: %w", c.Platform, c.ID, err)
	}
	return nil
}

func conversationKey(platform, id string) []byte {
	return appendPart(appendPart(nil, platform), id)
}
