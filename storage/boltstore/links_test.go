package boltstore_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/signoff-dev/signoff/storage"
	"github.com/signoff-dev/signoff/storage/boltstore"
)

// linkBuckets are the buckets added after the first files were in use
// (links, then nonces, then the per-requester pending index).
var linkBuckets = []string{"links", "link_attempts", "link_attempts_by_expiry", "conversations", "nonces", "nonces_by_expiry", "requests_pending_by_requester"}

// bucketNames lists the top-level buckets of the bolt file at path.
func bucketNames(t *testing.T, path string) []string {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var names []string
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			names = append(names, string(name))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// makeOldFile writes a store at path as a signoff from before identity links
// left it: one audit record, no link buckets.
func makeOldFile(t *testing.T, path string) {
	t.Helper()
	s := open(t, path, boltstore.Options{})
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		pending := storage.Request{ID: "old-pending", Action: "deploy", State: storage.StatePending, MinApprovals: 1,
			Requester: storage.Requester{Issuer: "github", Subject: "repo:acme/api"},
			CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
		if err := tx.CreateRequest(pending); err != nil {
			return err
		}
		return tx.AppendAudit(1, "h1", []byte("r1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range linkBuckets {
			if err := tx.DeleteBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"audit", "meta", "outbox", "requests", "requests_by_expiry", "requests_by_scope", "requests_by_time"}
	if got := bucketNames(t, path); !slices.Equal(got, want) {
		t.Fatalf("old file has buckets %q, want %q", got, want)
	}
}

func TestOldFileReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signoff.db")
	makeOldFile(t, path)

	s := open(t, path, boltstore.Options{ReadOnly: true})
	defer s.Close()
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		if seq, _, err := tx.AuditHead(); err != nil || seq != 1 {
			t.Errorf("AuditHead = (%d, %v), want 1", seq, err)
		}
		if _, err := tx.Link("slack", "T1", "U1"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Link on a file without links: err = %v, want ErrNotFound", err)
		}
		if ls, err := tx.Links(storage.LinkFilter{}); err != nil || len(ls) != 0 {
			t.Errorf("Links on a file without links = (%v, %v), want none", ls, err)
		}
		if ls, err := tx.Links(storage.LinkFilter{Platform: "slack", Workspace: "T1", Subject: "s"}); err != nil || len(ls) != 0 {
			t.Errorf("Links(filter) on a file without links = (%v, %v), want none", ls, err)
		}
		if _, err := tx.LinkAttempt("a"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("LinkAttempt on a file without attempts: err = %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, name := range bucketNames(t, path) {
		if slices.Contains(linkBuckets, name) {
			t.Errorf("a read-only open created bucket %s", name)
		}
	}
}

func TestOldFileUpgraded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signoff.db")
	makeOldFile(t, path)

	s := open(t, path, boltstore.Options{})
	link := storage.IdentityLink{Platform: "slack", Workspace: "T1", PlatformUser: "U1", Issuer: "https://idp", Subject: "sub", LinkedAt: time.Now(), VerifiedAt: time.Now()}
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		if seq, _, err := tx.AuditHead(); err != nil || seq != 1 {
			t.Errorf("AuditHead after upgrade = (%d, %v), want 1", seq, err)
		}
		if err := tx.PutLink(link); err != nil {
			return err
		}
		if err := tx.CreateLinkAttempt(storage.LinkAttempt{ID: "a1", Purpose: "link", ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
			return err
		}
		if err := tx.CreateLinkAttempt(storage.LinkAttempt{ID: "a2", Purpose: "link", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			return err
		}
		if n, err := tx.DeleteExpiredLinkAttempts(time.Now()); err != nil || n != 1 {
			t.Errorf("DeleteExpiredLinkAttempts = (%d, %v), want 1", n, err)
		}
		// The request pending before the per-requester index existed was
		// indexed on the upgrade.
		if rs, err := tx.PendingOf("github", "repo:acme/api"); err != nil || len(rs) != 1 || rs[0].ID != "old-pending" {
			t.Errorf("PendingOf after upgrade = (%v, %v), want old-pending", rs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names := bucketNames(t, path)
	for _, name := range linkBuckets {
		if !slices.Contains(names, name) {
			t.Errorf("a read-write open did not create bucket %s (buckets: %q)", name, names)
		}
	}

	r := open(t, path, boltstore.Options{ReadOnly: true})
	defer r.Close()
	err = r.View(t.Context(), func(tx storage.ReadTx) error {
		got, err := tx.Link("slack", "T1", "U1")
		if err != nil {
			return err
		}
		if got.Subject != "sub" {
			t.Errorf("Link after upgrade: subject %q, want sub", got.Subject)
		}
		if _, err := tx.LinkAttempt("a2"); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLinkRefusesEmptyKey(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	for _, l := range []storage.IdentityLink{
		{Platform: "", Workspace: "T1", PlatformUser: "U1"},
		{Platform: "slack", Workspace: "T1", PlatformUser: ""},
	} {
		if err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutLink(l) }); err == nil {
			t.Errorf("PutLink(%q, %q, %q) succeeded", l.Platform, l.Workspace, l.PlatformUser)
		}
	}
	if err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.CreateLinkAttempt(storage.LinkAttempt{Purpose: "link"}) }); err == nil {
		t.Errorf("CreateLinkAttempt with an empty id succeeded")
	}
	// An empty workspace is a workspace.
	l := storage.IdentityLink{Platform: "dev", PlatformUser: "ada", Subject: "s"}
	if err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutLink(l) }); err != nil {
		t.Fatalf("PutLink with an empty workspace: %v", err)
	}
	err := s.View(t.Context(), func(tx storage.ReadTx) error {
		ls, err := tx.Links(storage.LinkFilter{})
		if err != nil {
			return err
		}
		if len(ls) != 1 || ls[0].Platform != "dev" {
			t.Errorf("Links = %+v, want only the dev link", ls)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLinkAttemptIDNotInErrors checks that an attempt id, a bearer secret,
// stays out of error messages.
func TestLinkAttemptIDNotInErrors(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	const secret = "s3cr3t-attempt-id-0123456789abcdef"
	a := storage.LinkAttempt{ID: secret, Purpose: "link", ExpiresAt: time.Now()}
	if err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.CreateLinkAttempt(a) }); err != nil {
		t.Fatal(err)
	}
	var errs []error
	_ = s.Update(t.Context(), func(tx storage.Tx) error {
		errs = errs[:0]
		errs = append(errs, tx.CreateLinkAttempt(a))
		errs = append(errs, tx.PutLinkAttempt(storage.LinkAttempt{ID: secret + "x"}))
		errs = append(errs, tx.DeleteLinkAttempt(secret+"x"))
		_, err := tx.LinkAttempt(secret + "x")
		errs = append(errs, err)
		return nil
	})
	for _, err := range errs {
		if err == nil {
			t.Errorf("a refused attempt operation returned nil")
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains the attempt id", err)
		}
	}
}

// TestLinkDamagedRecord checks that a link stored under another account's
// key is reported, never returned for that account.
func TestLinkDamagedRecord(t *testing.T) {
	s := openTemp(t, boltstore.Options{})
	v, err := json.Marshal(storage.IdentityLink{Platform: "slack", Workspace: "T1", PlatformUser: "U1", Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	err = boltstore.DB(s).Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte("links")).Put(boltstore.LinkKey("slack", "T2", "U1"), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(t.Context(), func(tx storage.ReadTx) error {
		l, err := tx.Link("slack", "T2", "U1")
		if err == nil || errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("Link of a record stored under another key = (%+v, %v), want a damaged-store error", l, err)
		}
		ls, err := tx.Links(storage.LinkFilter{})
		if err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("Links with a misplaced record = (%+v, %v), want a damaged-store error", ls, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLinkKeyOrder checks on random triples over an alphabet of awkward
// bytes that link keys are equal exactly when the triples are, and compare as
// the triples do.
func TestLinkKeyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte{0x00, 0x01, 0x02, 0xfe, 0xff, 'a'}
	part := func() string {
		b := make([]byte, rng.IntN(4))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	triple := func() [3]string { return [3]string{part(), part(), part()} }
	compare := func(a, b [3]string) int {
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]), strings.Compare(a[2], b[2]))
	}
	for range 200000 {
		a, b := triple(), triple()
		if rng.IntN(4) == 0 { // share leading parts often
			b[0] = a[0]
			if rng.IntN(2) == 0 {
				b[1] = a[1]
			}
		}
		ka, kb := boltstore.LinkKey(a[0], a[1], a[2]), boltstore.LinkKey(b[0], b[1], b[2])
		if got, want := bytes.Compare(ka, kb), compare(a, b); got != want {
			t.Fatalf("keys of %q and %q compare %d, triples %d", a, b, got, want)
		}
		// A key starts with the encoding of its leading parts, and only
		// with that of its own.
		prefix := boltstore.LinkKey(b[0], b[1], "")
		prefix = prefix[:len(prefix)-2] // drop the empty user's terminator
		if got, want := bytes.HasPrefix(ka, prefix), a[0] == b[0] && a[1] == b[1]; got != want {
			t.Fatalf("key of %q has prefix of (%q, %q): %v, want %v", a, b[0], b[1], got, want)
		}
	}
}
