package boltstore

// Identity links and link attempts.
//
// A link is stored under linkKey(platform, workspace, user), so one cursor
// walk yields the links in (platform, workspace, user) order, and a Links
// filter on the platform, or on the platform and workspace, is a prefix seek.
// A filter on the workspace alone or on the subject walks every link (or every
// link of the platform) and decodes it: there is one link per chat account
// that signed in, and listing them is an administrative action rather than a
// hot path, so no subject index is kept.
//
// Attempts are indexed by expiry in link_attempts_by_expiry, as pending
// requests are in requests_by_expiry, so that DeleteExpiredLinkAttempts, which
// a sweeper calls periodically, reads only the attempts it removes instead of
// decoding every pending sign-in. Create, Put and Delete keep the index in
// step in the same transaction.
//
// An attempt id is a single-use bearer secret, so error messages never
// include it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/orderkey"
	"github.com/signoff-dev/signoff/storage/internal/record"
)

// Link returns the link of one chat account. The workspace is part of the
// key: a link made in one workspace is not found under another.
func (t *readTx) Link(platform, workspace, platformUser string) (storage.IdentityLink, error) {
	if b := t.bucket(bucketLinks); b != nil {
		k := linkKey(platform, workspace, platformUser)
		if v := b.Get(k); v != nil {
			return decodeLink(k, v)
		}
	}
	return storage.IdentityLink{}, fmt.Errorf("identity link of %s: %w", record.Account(platform, workspace, platformUser), storage.ErrNotFound)
}

// Links lists the links matching f, ordered by platform, workspace and
// platform user (byte order of each string).
func (t *readTx) Links(f storage.LinkFilter) ([]storage.IdentityLink, error) {
	b := t.bucket(bucketLinks)
	if b == nil {
		return nil, nil
	}
	var prefix []byte
	if f.Platform != "" {
		prefix = appendPart(prefix, f.Platform)
		if f.Workspace != "" {
			prefix = appendPart(prefix, f.Workspace)
		}
	}
	var out []storage.IdentityLink
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		l, err := decodeLink(k, v)
		if err != nil {
			return nil, fmt.Errorf("list identity links: %w", err)
		}
		if (f.Platform != "" && l.Platform != f.Platform) ||
			(f.Workspace != "" && l.Workspace != f.Workspace) ||
			(f.Subject != "" && l.Subject != f.Subject) {
			continue
		}
		out = append(out, l)
	}
	return out, nil
}

// decodeLink decodes the link stored under k and checks that it is the link
// k names, so that a damaged record can never answer for another account.
func decodeLink(k, v []byte) (storage.IdentityLink, error) {
	var l storage.IdentityLink
	if err := json.Unmarshal(v, &l); err != nil {
		return storage.IdentityLink{}, fmt.Errorf("decode identity link: %w (the store is damaged; restore it from a backup)", err)
	}
	if !bytes.Equal(k, linkKey(l.Platform, l.Workspace, l.PlatformUser)) {
		return storage.IdentityLink{}, fmt.Errorf("identity link of %s is stored under another account's key (the store is damaged; restore it from a backup)",
			record.Account(l.Platform, l.Workspace, l.PlatformUser))
	}
	return l, nil
}

// LinkAttempt returns the pending sign-in with the given id.
func (t *readTx) LinkAttempt(id string) (storage.LinkAttempt, error) {
	a, found, err := t.getAttempt(id)
	if err != nil {
		return storage.LinkAttempt{}, err
	}
	if !found {
		return storage.LinkAttempt{}, fmt.Errorf("link attempt: %w", storage.ErrNotFound)
	}
	return a, nil
}

func (t *readTx) getAttempt(id string) (storage.LinkAttempt, bool, error) {
	b := t.bucket(bucketAttempts)
	if b == nil || id == "" {
		return storage.LinkAttempt{}, false, nil
	}
	v := b.Get([]byte(id))
	if v == nil {
		return storage.LinkAttempt{}, false, nil
	}
	var a storage.LinkAttempt
	if err := json.Unmarshal(v, &a); err != nil {
		return storage.LinkAttempt{}, false, fmt.Errorf("decode link attempt: %w (the store is damaged; restore it from a backup)", err)
	}
	if a.ID != id {
		return storage.LinkAttempt{}, false, errors.New("a link attempt is stored under another id (the store is damaged; restore it from a backup)")
	}
	return a, true, nil
}

// writeBucket returns the named bucket, creating it if it is missing. Open
// creates every bucket on a read-write open, so this only guards against a
// file changed behind the store's back.
func (t *writeTx) writeBucket(name []byte) (*bbolt.Bucket, error) {
	if b := t.tx.Bucket(name); b != nil {
		return b, nil
	}
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	return b, nil
}

// PutLink creates or replaces the link of l's chat account. The platform and
// the platform user must not be empty; the workspace may be.
func (t *writeTx) PutLink(l storage.IdentityLink) error {
	account := record.Account(l.Platform, l.Workspace, l.PlatformUser)
	if l.Platform == "" || l.PlatformUser == "" {
		return fmt.Errorf("put identity link of %s: empty platform or platform user", account)
	}
	// Encoded now, so the caller may reuse l's slices before the commit.
	v, err := json.Marshal(record.Link(l))
	if err != nil {
		return fmt.Errorf("put identity link of %s: encode: %w", account, err)
	}
	b, err := t.writeBucket(bucketLinks)
	if err != nil {
		return fmt.Errorf("put identity link of %s: %w", account, err)
	}
	if err := b.Put(linkKey(l.Platform, l.Workspace, l.PlatformUser), v); err != nil {
		return fmt.Errorf("put identity link of %s: %w", account, err)
	}
	return nil
}

// DeleteLink removes the link of one chat account.
func (t *writeTx) DeleteLink(platform, workspace, platformUser string) error {
	account := record.Account(platform, workspace, platformUser)
	b, err := t.writeBucket(bucketLinks)
	if err != nil {
		return fmt.Errorf("delete identity link of %s: %w", account, err)
	}
	k := linkKey(platform, workspace, platformUser)
	if b.Get(k) == nil {
		return fmt.Errorf("delete identity link of %s: %w", account, storage.ErrNotFound)
	}
	if err := b.Delete(k); err != nil {
		return fmt.Errorf("delete identity link of %s: %w", account, err)
	}
	return nil
}

// CreateLinkAttempt stores a new attempt under a.ID.
func (t *writeTx) CreateLinkAttempt(a storage.LinkAttempt) error {
	if a.ID == "" {
		return errors.New("create link attempt: empty id")
	}
	if _, found, err := t.getAttempt(a.ID); err != nil {
		return fmt.Errorf("create link attempt: %w", err)
	} else if found {
		return fmt.Errorf("create link attempt: id %w", storage.ErrAlreadyExists)
	}
	if err := t.putAttempt(record.Attempt(a)); err != nil {
		return fmt.Errorf("create link attempt: %w", err)
	}
	return nil
}

// PutLinkAttempt replaces the existing attempt a.ID and moves its expiry
// index entry.
func (t *writeTx) PutLinkAttempt(a storage.LinkAttempt) error {
	old, found, err := t.getAttempt(a.ID)
	if err != nil {
		return fmt.Errorf("put link attempt: %w", err)
	}
	if !found {
		return fmt.Errorf("put link attempt: %w", storage.ErrNotFound)
	}
	if err := t.unindexAttempt(old); err != nil {
		return fmt.Errorf("put link attempt: %w", err)
	}
	if err := t.putAttempt(record.Attempt(a)); err != nil {
		return fmt.Errorf("put link attempt: %w", err)
	}
	return nil
}

// putAttempt writes a and its expiry index entry.
func (t *writeTx) putAttempt(a storage.LinkAttempt) error {
	v, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	b, err := t.writeBucket(bucketAttempts)
	if err != nil {
		return err
	}
	idx, err := t.writeBucket(bucketAttemptsByExpiry)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(a.ID), v); err != nil {
		return err
	}
	if err := idx.Put(indexKey(a.ExpiresAt, a.ID), nil); err != nil {
		return fmt.Errorf("index expiry: %w", err)
	}
	return nil
}

func (t *writeTx) unindexAttempt(a storage.LinkAttempt) error {
	idx, err := t.writeBucket(bucketAttemptsByExpiry)
	if err != nil {
		return err
	}
	if err := idx.Delete(indexKey(a.ExpiresAt, a.ID)); err != nil {
		return fmt.Errorf("unindex expiry: %w", err)
	}
	return nil
}

// DeleteLinkAttempt removes attempt id: it is used up. Of two transactions
// that both read the attempt and delete it, the one that commits second
// finds it gone (writes are serialized) and gets ErrNotFound.
func (t *writeTx) DeleteLinkAttempt(id string) error {
	a, found, err := t.getAttempt(id)
	if err != nil {
		return fmt.Errorf("delete link attempt: %w", err)
	}
	if !found {
		return fmt.Errorf("delete link attempt: %w", storage.ErrNotFound)
	}
	if err := t.deleteAttempt(a); err != nil {
		return fmt.Errorf("delete link attempt: %w", err)
	}
	return nil
}

func (t *writeTx) deleteAttempt(a storage.LinkAttempt) error {
	b, err := t.writeBucket(bucketAttempts)
	if err != nil {
		return err
	}
	if err := b.Delete([]byte(a.ID)); err != nil {
		return err
	}
	return t.unindexAttempt(a)
}

// DeleteExpiredLinkAttempts removes the attempts whose ExpiresAt is strictly
// before `before` and returns how many it removed.
func (t *writeTx) DeleteExpiredLinkAttempts(before time.Time) (int, error) {
	idx, err := t.writeBucket(bucketAttemptsByExpiry)
	if err != nil {
		return 0, fmt.Errorf("delete expired link attempts: %w", err)
	}
	keys, err := expiredKeys(idx, before, 0)
	if err != nil {
		return 0, fmt.Errorf("delete expired link attempts: %w", err)
	}
	for _, k := range keys {
		id := string(k[orderkey.TimeLen:])
		a, found, err := t.getAttempt(id)
		if err != nil {
			return 0, fmt.Errorf("delete expired link attempts: %w", err)
		}
		if !found {
			return 0, errors.New("delete expired link attempts: the expiry index names a missing attempt (the store is damaged; restore it from a backup)")
		}
		if err := t.deleteAttempt(a); err != nil {
			return 0, fmt.Errorf("delete expired link attempts: %w", err)
		}
	}
	return len(keys), nil
}

// linkKey is the key of a chat account's link: its three parts, each
// encoded by appendPart.
func linkKey(platform, workspace, platformUser string) []byte {
	k := make([]byte, 0, len(platform)+len(workspace)+len(platformUser)+3*2)
	k = appendPart(k, platform)
	k = appendPart(k, workspace)
	return appendPart(k, platformUser)
}

// appendPart appends s to k with each 0x00 byte escaped as 0x00 0xff, then
// the terminator 0x00 0x01. Because the terminator sorts below both an
// escaped 0x00 and every other byte, comparing two keys byte by byte
// compares their parts in order, each as a Go string would; and because it
// never occurs inside an encoded part, keys split into parts unambiguously
// (unlike a plain separator), and a key prefix of whole parts selects exactly
// the links with those leading parts (unlike a length prefix, which also
// breaks the string order).
func appendPart(k []byte, s string) []byte {
	for i := range len(s) {
		k = append(k, s[i])
		if s[i] == 0x00 {
			k = append(k, 0xff)
		}
	}
	return append(k, 0x00, 0x01)
}
