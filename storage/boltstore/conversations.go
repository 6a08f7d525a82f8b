package boltstore

import (
	"bytes"
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

// Conversations implements storage.ReadTx: a prefix walk of the bucket,
// so the order is that of (platform, id).
func (t *readTx) Conversations(platform string) ([]storage.Conversation, error) {
	b := t.bucket(bucketConversations)
	if b == nil {
		return nil, nil
	}
	var prefix []byte
	if platform != "" {
		prefix = appendPart(nil, platform)
	}
	var out []storage.Conversation
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var conv storage.Conversation
		if err := json.Unmarshal(v, &conv); err != nil {
			return nil, fmt.Errorf("list conversations: decode: %w (the store is damaged; restore it from a backup)", err)
		}
		out = append(out, conv)
	}
	return out, nil
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
