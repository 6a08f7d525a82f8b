package pgstore

// Identity links, link attempts, conversation references and nonces.
//
// An attempt id is a single-use bearer secret, so error messages never
// include it.

import (
	"errors"
	"fmt"
	"time"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/internal/orderkey"
	"github.com/signoff-dev/signoff/storage/internal/record"
)

// Link returns the link of one chat account. The workspace is part of the
// key: a link made in one workspace is not found under another.
func (t *readTx) Link(platform, workspace, platformUser string) (storage.IdentityLink, error) {
	ls, err := t.links("read identity link", `
		SELECT body FROM links WHERE platform = $1 AND workspace = $2 AND platform_user = $3`,
		key(platform), key(workspace), key(platformUser))
	if err != nil {
		return storage.IdentityLink{}, err
	}
	if len(ls) == 0 {
		return storage.IdentityLink{}, fmt.Errorf("identity link of %s: %w", record.Account(platform, workspace, platformUser), storage.ErrNotFound)
	}
	if l := ls[0]; l.Platform != platform || l.Workspace != workspace || l.PlatformUser != platformUser {
		return storage.IdentityLink{}, fmt.Errorf("identity link of %s is stored under another account's key (the database is damaged; restore it from a backup)",
			record.Account(l.Platform, l.Workspace, l.PlatformUser))
	}
	return ls[0], nil
}

// Links lists the links matching f, ordered by platform, workspace and
// platform user (byte order of each string).
func (t *readTx) Links(f storage.LinkFilter) ([]storage.IdentityLink, error) {
	return t.links("list identity links", `
		SELECT body FROM links
		WHERE ($1::bytea IS NULL OR platform = $1)
		  AND ($2::bytea IS NULL OR workspace = $2)
		  AND ($3::bytea IS NULL OR subject = $3)
		ORDER BY platform, workspace, platform_user`,
		nullKey(f.Platform), nullKey(f.Workspace), nullKey(f.Subject))
}

func (t *readTx) links(what, sql string, args ...any) ([]storage.IdentityLink, error) {
	return queryBodies[storage.IdentityLink](t, what, sql, args...)
}

// LinkAttempt returns the pending sign-in with the given id.
func (t *readTx) LinkAttempt(id string) (storage.LinkAttempt, error) {
	a, found, err := queryBody[storage.LinkAttempt](t, "read link attempt", `SELECT body FROM link_attempts WHERE id = $1`, key(id))
	if err != nil {
		return storage.LinkAttempt{}, err
	}
	if !found {
		return storage.LinkAttempt{}, fmt.Errorf("link attempt: %w", storage.ErrNotFound)
	}
	if a.ID != id {
		return storage.LinkAttempt{}, errors.New("a link attempt is stored under another id (the database is damaged; restore it from a backup)")
	}
	return a, nil
}

// Conversation returns what is known of a platform's conversation.
func (t *readTx) Conversation(platform, id string) (storage.Conversation, error) {
	c, found, err := queryBody[storage.Conversation](t, "read conversation",
		`SELECT body FROM conversations WHERE platform = $1 AND id = $2`, key(platform), key(id))
	if err != nil {
		return storage.Conversation{}, err
	}
	if !found {
		return storage.Conversation{}, fmt.Errorf("conversation %s %q: %w", platform, id, storage.ErrNotFound)
	}
	return c, nil
}

// Conversations lists the conversations of one platform ("" for all),
// ordered by platform and id.
func (t *readTx) Conversations(platform string) ([]storage.Conversation, error) {
	return queryBodies[storage.Conversation](t, "list conversations", `
		SELECT body FROM conversations WHERE ($1::bytea IS NULL OR platform = $1) ORDER BY platform, id`, nullKey(platform))
}

// PutLink creates or replaces the link of l's chat account. The platform and
// the platform user must not be empty; the workspace may be.
func (t *writeTx) PutLink(l storage.IdentityLink) error {
	what := "put identity link of " + record.Account(l.Platform, l.Workspace, l.PlatformUser)
	if l.Platform == "" || l.PlatformUser == "" {
		return fmt.Errorf("%s: empty platform or platform user", what)
	}
	body, err := encode(what, record.Link(l))
	if err != nil {
		return err
	}
	_, err = t.exec(what, `
		INSERT INTO links (platform, workspace, platform_user, subject, body) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (platform, workspace, platform_user) DO UPDATE SET subject = EXCLUDED.subject, body = EXCLUDED.body`,
		key(l.Platform), key(l.Workspace), key(l.PlatformUser), key(l.Subject), body)
	return err
}

// DeleteLink removes the link of one chat account.
func (t *writeTx) DeleteLink(platform, workspace, platformUser string) error {
	what := "delete identity link of " + record.Account(platform, workspace, platformUser)
	return t.execExisting(what, `DELETE FROM links WHERE platform = $1 AND workspace = $2 AND platform_user = $3`,
		key(platform), key(workspace), key(platformUser))
}

// CreateLinkAttempt stores a new attempt under a.ID.
func (t *writeTx) CreateLinkAttempt(a storage.LinkAttempt) error {
	if a.ID == "" {
		return errors.New("create link attempt: empty id")
	}
	a = record.Attempt(a)
	body, err := encode("create link attempt", a)
	if err != nil {
		return err
	}
	n, err := t.exec("create link attempt", `
		INSERT INTO link_attempts (id, expires_key, body) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		key(a.ID), orderkey.Time(a.ExpiresAt), body)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("create link attempt: id %w", storage.ErrAlreadyExists)
	}
	return nil
}

// PutLinkAttempt replaces the existing attempt a.ID.
func (t *writeTx) PutLinkAttempt(a storage.LinkAttempt) error {
	a = record.Attempt(a)
	body, err := encode("put link attempt", a)
	if err != nil {
		return err
	}
	return t.execExisting("put link attempt", `UPDATE link_attempts SET expires_key = $2, body = $3 WHERE id = $1`,
		key(a.ID), orderkey.Time(a.ExpiresAt), body)
}

// DeleteLinkAttempt removes attempt id: it is used up. Writers hold the
// write lock in turn, so of two transactions that both read the attempt and
// delete it, the second finds it gone and gets ErrNotFound.
func (t *writeTx) DeleteLinkAttempt(id string) error {
	return t.execExisting("delete link attempt", `DELETE FROM link_attempts WHERE id = $1`, key(id))
}

// DeleteExpiredLinkAttempts removes the attempts whose ExpiresAt is strictly
// before `before` and returns how many it removed.
func (t *writeTx) DeleteExpiredLinkAttempts(before time.Time) (int, error) {
	n, err := t.exec("delete expired link attempts", `DELETE FROM link_attempts WHERE expires_key < $1`, orderkey.Time(before))
	return int(n), err
}

// PutConversation creates or replaces a conversation reference.
func (t *writeTx) PutConversation(c storage.Conversation) error {
	if c.Platform == "" || c.ID == "" {
		return errors.New("put conversation: platform and id must not be empty")
	}
	what := fmt.Sprintf("put conversation %s %q", c.Platform, c.ID)
	c.UpdatedAt = c.UpdatedAt.UTC()
	body, err := encode(what, c)
	if err != nil {
		return err
	}
	_, err = t.exec(what, `
		INSERT INTO conversations (platform, id, body) VALUES ($1, $2, $3)
		ON CONFLICT (platform, id) DO UPDATE SET body = EXCLUDED.body`,
		key(c.Platform), key(c.ID), body)
	return err
}

// RecordNonce stores n and reports true, unless the same nonce is stored
// with an expiry after now (a replay: false). One statement decides, so two
// replicas recording the same nonce at once cannot both see it as new.
func (t *writeTx) RecordNonce(n storage.Nonce, now time.Time) (bool, error) {
	if n.Scope == "" || n.Value == "" {
		return false, errors.New("record nonce: scope and value must not be empty")
	}
	stored, err := t.exec(fmt.Sprintf("record nonce in scope %q", n.Scope), `
		INSERT INTO nonces (scope, value, expires_key) VALUES ($1, $2, $3)
		ON CONFLICT (scope, value) DO UPDATE SET expires_key = EXCLUDED.expires_key
		WHERE nonces.expires_key <= $4`,
		key(n.Scope), key(n.Value), orderkey.Time(n.ExpiresAt), orderkey.Time(now))
	return stored == 1, err
}

// DeleteExpiredNonces removes up to limit nonces whose ExpiresAt is before
// `before`, soonest expiry first, and returns how many.
func (t *writeTx) DeleteExpiredNonces(before time.Time, limit int) (int, error) {
	n, err := t.exec("delete expired nonces", `
		DELETE FROM nonces WHERE (scope, value) IN (
			SELECT scope, value FROM nonces WHERE expires_key < $1 ORDER BY expires_key LIMIT $2)`,
		orderkey.Time(before), limitArg(limit))
	return int(n), err
}
