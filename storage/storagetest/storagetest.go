// Package storagetest is the conformance suite every storage backend must
// pass. A backend's test calls Run with a constructor for fresh, empty stores
// (and RunReopen if it persists across restarts):
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store {
//			s, err := boltstore.Open(filepath.Join(t.TempDir(), "signoff.db"), boltstore.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// The suite checks the contract written in package storage's doc and only
// that: it never looks inside a backend. It waits on results, never on the
// clock, and is meant to run with -race.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/storage"
)

// suiteCase is one case of the suite (Run, RunShared): a subtest name and
// the check it runs against a store.
type suiteCase struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}

// Run runs the conformance suite as subtests of t. newStore must return a
// new, empty, open store each time it is called (typically in t.TempDir() or
// a fresh schema); Run closes every store it gets when the subtest ends, so
// newStore should not close it too.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []suiteCase{
		{"CreateAndGet", testCreateAndGet},
		{"GetNotFound", testGetNotFound},
		{"CreateDuplicateID", testCreateDuplicateID},
		{"CreateDuplicateIdempotencyScope", testCreateDuplicateScope},
		{"RequestByIdempotencyScope", testRequestByScope},
		{"UpdateRequestCAS", testUpdateRequestCAS},
		{"UpdateRequestNotFound", testUpdateRequestNotFound},
		{"PendingExpiring", testPendingExpiring},
		{"PendingExpiringFollowsUpdates", testPendingExpiringFollowsUpdates},
		{"PendingOfRequester", testPendingOf},
		{"RequestsFilter", testRequestsFilter},
		{"TxSeesOwnWrites", testTxSeesOwnWrites},
		{"TxUsableAfterRefusal", testTxUsableAfterRefusal},
		{"AuditAppend", testAuditAppend},
		{"AuditRecordBytesAreCopied", testAuditBytesCopied},
		{"AuditRecords", testAuditRecords},
		{"AuditRecordsStopsOnError", testAuditRecordsStop},
		{"AuditRecordsCancelled", testAuditRecordsCancelled},
		{"OutboxEnqueue", testOutboxEnqueue},
		{"OutboxDue", testOutboxDue},
		{"OutboxDueByKind", testOutboxDueByKind},
		{"OutboxPutAndDelete", testOutboxPutDelete},
		{"LinkEmpty", testLinkEmpty},
		{"LinkPutGetReplace", testLinkPutGetReplace},
		{"LinkTenantBoundary", testLinkTenantBoundary},
		{"LinksFilter", testLinksFilter},
		{"LinkDelete", testLinkDelete},
		{"LinkTxSeesOwnWrites", testLinkTxSeesOwnWrites},
		{"LinkAttempts", testLinkAttempts},
		{"LinkAttemptSingleUse", testLinkAttemptSingleUse},
		{"DeleteExpiredLinkAttempts", testDeleteExpiredLinkAttempts},
		{"Conversations", testConversations},
		{"Nonces", testNonces},
		{"NoncesInTx", testNoncesInTx},
		{"DeleteExpiredNonces", testDeleteExpiredNonces},
		{"ConcurrentNonce", testConcurrentNonce},
		{"UpdateErrorWritesNothing", testUpdateErrorAtomic},
		{"UpdatePanicWritesNothing", testUpdatePanic},
		{"UpdateCancelledContext", testUpdateCancelled},
		{"ConcurrentAuditChain", testConcurrentAuditChain},
		{"ConcurrentCAS", testConcurrentCAS},
		{"ConcurrentIdempotentCreate", testConcurrentIdempotentCreate},
		{"ConcurrentOutboxClaim", testConcurrentOutboxClaim},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &tracked{Store: newStore(t)}
			t.Cleanup(func() {
				if s.closed {
					return
				}
				if err := s.Store.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// RunReopen checks that a store keeps everything across a close and reopen:
// requests, their indexes, the audit chain, the outbox with its id sequence,
// the identity links and link attempts with their expiry, and the nonces
// with theirs. open must open the store kept in dir, creating it on the first
// call; RunReopen calls it twice with the same dir and closes what it opens.
func RunReopen(t *testing.T, open func(t *testing.T, dir string) storage.Store) {
	t.Helper()
	dir := t.TempDir()

	first := open(t, dir)
	r1 := sampleRequest("reopen-1", base)
	r1.IdempotencyScope = "github/ci:key-1"
	r2 := minimalRequest("reopen-2", storage.StateApproved, base.Add(time.Minute), base.Add(time.Hour))
	var entries []storage.OutboxEntry
	var deletedID uint64
	update(t, first, func(tx storage.Tx) error {
		entries = entries[:0]
		if err := tx.CreateRequest(r1); err != nil {
			return err
		}
		if err := tx.CreateRequest(r2); err != nil {
			return err
		}
		for seq := uint64(1); seq <= 3; seq++ {
			if err := tx.AppendAudit(seq, fmt.Sprintf("h%d", seq), auditBytes(seq)); err != nil {
				return err
			}
		}
		for i := range 3 {
			e, err := tx.Enqueue(sampleOutbox("reopen-1", base.Add(time.Duration(i)*time.Second)))
			if err != nil {
				return err
			}
			entries = append(entries, e)
		}
		// The newest id is deleted: it must not be handed out again.
		deletedID = entries[2].ID
		entries = entries[:2]
		if err := tx.DeleteOutbox(deletedID); err != nil {
			return err
		}
		if err := putLinkRecords(tx, reopenLinks, reopenAttempts); err != nil {
			return err
		}
		return recordReopenNonces(tx)
	})
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s := open(t, dir)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	r1.Version, r2.Version = 1, 1
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Request(r1.ID)
		if err != nil {
			return err
		}
		checkRequest(t, got, r1)
		got, err = tx.RequestByIdempotencyScope(r1.IdempotencyScope)
		if err != nil {
			return fmt.Errorf("RequestByIdempotencyScope after reopen: %w", err)
		}
		checkRequest(t, got, r1)
		if err := checkRequestLists(t, tx, " after reopen", []string{r1.ID}, r2.ID, r1.ID); err != nil {
			return err
		}
		seq, hash, err := tx.AuditHead()
		if err != nil {
			return err
		}
		if seq != 3 || hash != "h3" {
			t.Errorf("AuditHead after reopen = (%d, %q), want (3, \"h3\")", seq, hash)
		}
		due, err := tx.DueOutbox(farFuture, "", 100)
		if err != nil {
			return err
		}
		if len(due) != len(entries) {
			t.Fatalf("DueOutbox after reopen: %d entries, want %d", len(due), len(entries))
		}
		for i := range due {
			checkOutbox(t, due[i], entries[i])
		}
		if err := checkLinksListed(t, tx, " after reopen", reopenLinks); err != nil {
			return err
		}
		if err := checkLinksIn(t, tx, " after reopen", reopenLinks...); err != nil {
			return err
		}
		linkMissing(t, tx, "slack", "T2", "U1")
		return checkAttemptsIn(t, tx, " after reopen", reopenAttempts...)
	})
	checkAudit(t, s, 1, 3)

	update(t, s, func(tx storage.Tx) error {
		dup := minimalRequest("reopen-3", storage.StatePending, base, base)
		dup.IdempotencyScope = r1.IdempotencyScope
		if err := tx.CreateRequest(dup); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("CreateRequest with a scope taken before reopen: err = %v, want ErrAlreadyExists", err)
		}
		if err := tx.AppendAudit(3, "again", nil); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("AppendAudit(3) after reopen with head 3: err = %v, want ErrConflict", err)
		}
		if err := tx.AppendAudit(4, "h4", auditBytes(4)); err != nil {
			return fmt.Errorf("AppendAudit(4) after reopen: %w", err)
		}
		e, err := tx.Enqueue(sampleOutbox("reopen-1", base))
		if err != nil {
			return err
		}
		if e.ID <= deletedID {
			t.Errorf("Enqueue after reopen gave id %d, want more than %d (ids must keep increasing)", e.ID, deletedID)
		}
		r := r1
		r.State = storage.StateApproved
		if err := tx.UpdateRequest(r); err != nil {
			return fmt.Errorf("UpdateRequest after reopen: %w", err)
		}
		got, err := tx.Request(r1.ID)
		if err != nil {
			return err
		}
		if got.Version != 2 {
			t.Errorf("version after UpdateRequest = %d, want 2", got.Version)
		}

		if err := tx.CreateLinkAttempt(reopenAttempts[0]); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Errorf("CreateLinkAttempt with an id taken before reopen: err = %v, want ErrAlreadyExists", err)
		}
		// The expiry index survived: only the expired attempt goes.
		n, err := tx.DeleteExpiredLinkAttempts(base)
		if err != nil {
			return fmt.Errorf("DeleteExpiredLinkAttempts after reopen: %w", err)
		}
		if n != 1 {
			t.Errorf("DeleteExpiredLinkAttempts(base) after reopen = %d, want 1", n)
		}
		if _, err := tx.LinkAttempt(reopenAttempts[1].ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("expired attempt after DeleteExpiredLinkAttempts: err = %v, want ErrNotFound", err)
		}
		if err := tx.DeleteLinkAttempt(reopenAttempts[0].ID); err != nil {
			return fmt.Errorf("DeleteLinkAttempt after reopen: %w", err)
		}
		if err := tx.DeleteLink(reopenLinks[1].Platform, reopenLinks[1].Workspace, reopenLinks[1].PlatformUser); err != nil {
			return fmt.Errorf("DeleteLink after reopen: %w", err)
		}
		if n, err := tx.DeleteExpiredLinkAttempts(farFuture); err != nil || n != 0 {
			t.Errorf("DeleteExpiredLinkAttempts(far future) with no attempt left = (%d, %v), want 0", n, err)
		}
		return checkReopenNonces(t, tx)
	})
}

// The links and attempts RunReopen writes before it reopens the store; the
// second attempt has expired by base.
var (
	reopenLinks = []storage.IdentityLink{
		sampleLink("teams", "tenant-a", "aad-1"),
		sampleLink("slack", "T1", "U1"),
		minimalLink("slack", "T1", "U0", "sub-0"),
	}
	reopenAttempts = []storage.LinkAttempt{
		sampleAttempt("reopen-attempt-1", base.Add(time.Hour)),
		sampleAttempt("reopen-attempt-2", base.Add(-time.Hour)),
	}
)

// tracked remembers whether a test closed its store itself.
type tracked struct {
	storage.Store
	closed bool
}

func (s *tracked) Close() error {
	s.closed = true
	return s.Store.Close()
}

// base is the suite's reference time: nanoseconds set, not UTC, so that the
// suite sees whether a backend keeps full precision and stores UTC.
var (
	base      = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))
	farFuture = base.AddDate(100, 0, 0)
)

// sampleRequest fills every field, so that a round trip proves the backend
// stores all of them.
func sampleRequest(id string, created time.Time) storage.Request {
	return storage.Request{
		ID:     id,
		Action: "deploy",
		Params: map[string]string{"service": "api", "version": "1.4.2"},
		Reason: "release 1.4.2 — fixes <!channel> & *bold*",
		Links:  []storage.Link{{Title: "CI run", URL: "https://ci.example.com/runs/1"}},
		Requester: storage.Requester{
			Issuer:    "github",
			IssuerURL: "https://token.actions.githubusercontent.com",
			Subject:   "repo:acme/api:ref:refs/heads/main",
			Person:    "octocat",
			Name:      "The Octocat",
			Email:     "octocat@example.com",
			Claims:    map[string]string{"repository": "acme/api", "ref": "refs/heads/main"},
		},
		Fingerprint:  "sha256:0f1e2d",
		State:        storage.StatePending,
		MinApprovals: 2,
		CreatedAt:    created,
		ExpiresAt:    created.Add(time.Hour),
		DecidedAt:    created.Add(time.Minute).In(time.FixedZone("PST", -8*3600)),
		DecidedBy:    "quorum",
		Votes: []storage.Vote{{
			Approver: storage.Approver{
				Issuer: "https://idp.example.com", Subject: "u-1", Name: "Ada", Email: "ada@example.com",
				PreferredUsername: "ada", Groups: []string{"deployers", "sre"},
				VerifiedAt: created.Add(-time.Hour), Platform: "slack", Workspace: "T1", PlatformUser: "U1",
			},
			Decision: storage.DecisionApprove,
			Time:     created.Add(time.Second),
			Source:   "cb-1",
			Reason:   "lgtm",
		}},
		Execution: &storage.Execution{Status: storage.ExecutionPending, Attempts: 1, LastError: "timeout", UpdatedAt: created.Add(2 * time.Second)},
		Cards:     []storage.Card{{Platform: "teams", Conversation: "19:abc", MessageID: "1700000000", ServiceURL: "https://smba.example.com/"}},
		// A denied break-glass review whose block was lifted (a request
		// has Review or Reviews; the store keeps both as given).
		BreakGlass: &storage.BreakGlass{
			Review: "req-review", Reviews: "req-bg",
			Due:        created.Add(24 * time.Hour).In(time.FixedZone("CET", 3600)),
			Unreviewed: created.Add(25 * time.Hour),
			Lifted:     created.Add(26 * time.Hour).In(time.FixedZone("PST", -8*3600)),
		},
		// Not a real signature: the store keeps the token as given.
		Attestation: "eyJhbGciOiJFUzI1NiIsInR5cCI6ImFwcHJvdmFsK2p3dCJ9.eyJzdWIiOiJyZXEtMSJ9.c2ln",
		Version:     42, // ignored by CreateRequest
	}
}

func minimalRequest(id string, state storage.State, created, expires time.Time) storage.Request {
	return storage.Request{ID: id, Action: "deploy", State: state, MinApprovals: 1, CreatedAt: created, ExpiresAt: expires}
}

func sampleOutbox(requestID string, next time.Time) storage.OutboxEntry {
	return storage.OutboxEntry{
		RequestID:   requestID,
		Kind:        "slack.post",
		Payload:     []byte{0, 1, 2, 0xff, '{', '"'},
		Attempts:    0,
		NextAttempt: next,
		CreatedAt:   base,
	}
}

func auditBytes(seq uint64) []byte {
	// Not valid UTF-8 on purpose: the store keeps bytes, not text.
	return fmt.Appendf([]byte{0xff, 0x00}, `{"seq":%d}`, seq)
}

func update(t *testing.T, s storage.Store, fn func(storage.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func view(t *testing.T, s storage.Store, fn func(storage.ReadTx) error) {
	t.Helper()
	if err := s.View(t.Context(), fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// viewValue returns what fn reads in a read transaction of its own.
func viewValue[T any](t *testing.T, s storage.Store, fn func(storage.ReadTx) (T, error)) T {
	t.Helper()
	var v T
	view(t, s, func(tx storage.ReadTx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v
}

// updateValue returns what fn returns in a transaction of its own.
func updateValue[T any](t *testing.T, s storage.Store, fn func(storage.Tx) (T, error)) T {
	t.Helper()
	var v T
	update(t, s, func(tx storage.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	return v
}

// updateEach writes each of items with write, all in one transaction.
func updateEach[T any](t *testing.T, s storage.Store, write func(storage.Tx, T) error, items []T) {
	t.Helper()
	update(t, s, func(tx storage.Tx) error {
		for _, item := range items {
			if err := write(tx, item); err != nil {
				return err
			}
		}
		return nil
	})
}

func create(t *testing.T, s storage.Store, rs ...storage.Request) {
	t.Helper()
	updateEach(t, s, storage.Tx.CreateRequest, rs)
}

func getRequest(t *testing.T, s storage.Store, id string) storage.Request {
	t.Helper()
	return viewValue(t, s, func(tx storage.ReadTx) (storage.Request, error) { return tx.Request(id) })
}

func pendingIDs(t *testing.T, s storage.Store, at time.Time, limit int) []string {
	t.Helper()
	return requestIDs(viewValue(t, s, func(tx storage.ReadTx) ([]storage.Request, error) { return tx.PendingExpiring(at, limit) }))
}

func listIDs(t *testing.T, s storage.Store, f storage.RequestFilter) []string {
	t.Helper()
	return requestIDs(viewValue(t, s, func(tx storage.ReadTx) ([]storage.Request, error) { return tx.Requests(f) }))
}

func requestIDs(rs []storage.Request) []string {
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// checkRequestLists checks the ids of the requests PendingExpiring lists
// (pending) and Requests lists (all), in order; when (" after reopen", or
// "") tells its messages apart.
func checkRequestLists(t *testing.T, tx storage.ReadTx, when string, pending []string, all ...string) error {
	t.Helper()
	pend, err := tx.PendingExpiring(farFuture, 100)
	if err != nil {
		return err
	}
	checkIDs(t, "PendingExpiring"+when, requestIDs(pend), pending...)
	list, err := tx.Requests(storage.RequestFilter{})
	if err != nil {
		return err
	}
	checkIDs(t, "Requests"+when, requestIDs(list), all...)
	return nil
}

func checkIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// checkRequest compares got with want after converting want's times to UTC,
// and checks that every time in got is in UTC.
func checkRequest(t *testing.T, got, want storage.Request) {
	t.Helper()
	checkStored(t, "request "+got.ID, requestTimes(got), got, want, utcRequest)
}

// checkStored checks that each of times, got's times by name, is in UTC,
// and compares got with want after both went through utc. what names the
// record in the messages.
func checkStored[T any](t *testing.T, what string, times map[string]time.Time, got, want T, utc func(T) T) {
	t.Helper()
	for name, tm := range times {
		if tm.Location() != time.UTC {
			t.Errorf("%s: %s is in %v, want UTC", what, name, tm.Location())
		}
	}
	if g, w := utc(got), utc(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s differs:\n got %s\nwant %s", what, jsonString(g), jsonString(w))
	}
}

func requestTimes(r storage.Request) map[string]time.Time {
	m := map[string]time.Time{"CreatedAt": r.CreatedAt, "ExpiresAt": r.ExpiresAt, "DecidedAt": r.DecidedAt}
	for i, v := range r.Votes {
		m[fmt.Sprintf("Votes[%d].Time", i)] = v.Time
		m[fmt.Sprintf("Votes[%d].Approver.VerifiedAt", i)] = v.Approver.VerifiedAt
	}
	if r.Execution != nil {
		m["Execution.UpdatedAt"] = r.Execution.UpdatedAt
	}
	if bg := r.BreakGlass; bg != nil {
		m["BreakGlass.Due"], m["BreakGlass.Unreviewed"], m["BreakGlass.Lifted"] = bg.Due, bg.Unreviewed, bg.Lifted
	}
	return m
}

func utcRequest(r storage.Request) storage.Request {
	r.CreatedAt, r.ExpiresAt, r.DecidedAt = r.CreatedAt.UTC(), r.ExpiresAt.UTC(), r.DecidedAt.UTC()
	if r.Votes != nil {
		votes := slices.Clone(r.Votes)
		for i := range votes {
			votes[i].Time = votes[i].Time.UTC()
			votes[i].Approver.VerifiedAt = votes[i].Approver.VerifiedAt.UTC()
		}
		r.Votes = votes
	}
	if r.Execution != nil {
		ex := *r.Execution
		ex.UpdatedAt = ex.UpdatedAt.UTC()
		r.Execution = &ex
	}
	if r.BreakGlass != nil {
		bg := *r.BreakGlass
		bg.Due, bg.Unreviewed, bg.Lifted = bg.Due.UTC(), bg.Unreviewed.UTC(), bg.Lifted.UTC()
		r.BreakGlass = &bg
	}
	return r
}

func checkOutbox(t *testing.T, got, want storage.OutboxEntry) {
	t.Helper()
	times := map[string]time.Time{"NextAttempt": got.NextAttempt, "LeaseUntil": got.LeaseUntil, "CreatedAt": got.CreatedAt}
	checkStored(t, fmt.Sprintf("outbox entry %d", got.ID), times, got, want, utcOutbox)
}

func utcOutbox(e storage.OutboxEntry) storage.OutboxEntry {
	e.NextAttempt, e.LeaseUntil, e.CreatedAt = e.NextAttempt.UTC(), e.LeaseUntil.UTC(), e.CreatedAt.UTC()
	return e
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// checkAudit checks that the log holds exactly the records auditBytes(from..to).
func checkAudit(t *testing.T, s storage.Store, from, to uint64) {
	t.Helper()
	next := from
	err := s.AuditRecords(t.Context(), from, func(seq uint64, rec []byte) error {
		if seq != next {
			return fmt.Errorf("got record %d, want %d", seq, next)
		}
		if want := auditBytes(seq); !bytes.Equal(rec, want) {
			return fmt.Errorf("record %d = %q, want %q", seq, rec, want)
		}
		next++
		return nil
	})
	if err != nil {
		t.Fatalf("AuditRecords(%d): %v", from, err)
	}
	if next != to+1 {
		t.Fatalf("AuditRecords(%d) ended before %d, want after %d", from, next, to)
	}
}

func testCreateAndGet(t *testing.T, s storage.Store) {
	r := sampleRequest("req-1", base)
	r.IdempotencyScope = "github/repo:acme/api:key-1"
	create(t, s, r)
	want := r
	want.Version = 1
	checkRequest(t, getRequest(t, s, r.ID), want)
	if r.Version != 42 || r.CreatedAt.Location() == time.UTC {
		t.Errorf("CreateRequest changed the caller's request")
	}
}

func testGetNotFound(t *testing.T, s storage.Store) {
	create(t, s, minimalRequest("exists", storage.StatePending, base, base))
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Request("missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Request(missing): err = %v, want ErrNotFound", err)
		}
		if _, err := tx.RequestByIdempotencyScope("missing"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("RequestByIdempotencyScope(missing): err = %v, want ErrNotFound", err)
		}
		if _, err := tx.RequestByIdempotencyScope(""); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("RequestByIdempotencyScope(\"\"): err = %v, want ErrNotFound", err)
		}
		if _, err := tx.Outbox(12345); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Outbox(12345): err = %v, want ErrNotFound", err)
		}
		return nil
	})
}

func testCreateDuplicateID(t *testing.T, s storage.Store) {
	first := minimalRequest("dup", storage.StatePending, base, base.Add(time.Hour))
	create(t, s, first)
	second := sampleRequest("dup", base.Add(time.Minute))
	err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.CreateRequest(second) })
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second CreateRequest(dup): err = %v, want ErrAlreadyExists", err)
	}
	first.Version = 1
	checkRequest(t, getRequest(t, s, "dup"), first)
	checkIDs(t, "Requests", listIDs(t, s, storage.RequestFilter{}), "dup")
}

func testCreateDuplicateScope(t *testing.T, s storage.Store) {
	a := minimalRequest("a", storage.StatePending, base, base.Add(time.Hour))
	a.IdempotencyScope = "scope-1"
	create(t, s, a)
	b := minimalRequest("b", storage.StatePending, base, base.Add(time.Hour))
	b.IdempotencyScope = "scope-1"
	err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.CreateRequest(b) })
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("CreateRequest with a taken scope: err = %v, want ErrAlreadyExists", err)
	}
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Request("b"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Request(b) after refused create: err = %v, want ErrNotFound", err)
		}
		return nil
	})
	// An empty scope is no scope: any number of requests may have it.
	create(t, s,
		minimalRequest("c", storage.StatePending, base, base.Add(time.Hour)),
		minimalRequest("d", storage.StatePending, base, base.Add(time.Hour)))
}

func testRequestByScope(t *testing.T, s storage.Store) {
	a := sampleRequest("a", base)
	a.IdempotencyScope = "github/ci:key-a"
	b := sampleRequest("b", base)
	b.IdempotencyScope = "github/ci:key-b"
	create(t, s, a, b, minimalRequest("c", storage.StatePending, base, base))
	a.Version, b.Version = 1, 1
	view(t, s, func(tx storage.ReadTx) error {
		for _, want := range []storage.Request{a, b} {
			got, err := tx.RequestByIdempotencyScope(want.IdempotencyScope)
			if err != nil {
				return fmt.Errorf("RequestByIdempotencyScope(%q): %w", want.IdempotencyScope, err)
			}
			checkRequest(t, got, want)
		}
		return nil
	})
}

func testUpdateRequestCAS(t *testing.T, s storage.Store) {
	r := sampleRequest("cas", base)
	r.IdempotencyScope = "scope-cas"
	create(t, s, r)
	read := getRequest(t, s, "cas")
	if read.Version != 1 {
		t.Fatalf("version after create = %d, want 1", read.Version)
	}

	changed := read
	changed.State = storage.StateApproved
	changed.DecidedAt = base.Add(time.Hour)
	changed.Votes = append(slices.Clone(changed.Votes), storage.Vote{Decision: storage.DecisionApprove, Time: base.Add(time.Hour), Approver: storage.Approver{Subject: "u-2", Platform: "teams"}})
	update(t, s, func(tx storage.Tx) error { return tx.UpdateRequest(changed) })
	want := changed
	want.Version = 2
	checkRequest(t, getRequest(t, s, "cas"), want)

	// The version read before the update is stale now.
	stale := read
	stale.Reason = "stale write"
	err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.UpdateRequest(stale) })
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateRequest with stale version 1: err = %v, want ErrConflict", err)
	}
	// A version from the future is as wrong.
	future := want
	future.Version = 7
	err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.UpdateRequest(future) })
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("UpdateRequest with version 7 (stored 2): err = %v, want ErrConflict", err)
	}
	checkRequest(t, getRequest(t, s, "cas"), want)

	// The scope index follows the new version.
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.RequestByIdempotencyScope("scope-cas")
		if err != nil {
			return err
		}
		checkRequest(t, got, want)
		return nil
	})

	// Versions keep counting.
	next := want
	next.Reason = "third"
	update(t, s, func(tx storage.Tx) error { return tx.UpdateRequest(next) })
	if got := getRequest(t, s, "cas"); got.Version != 3 || got.Reason != "third" {
		t.Errorf("after second update: version %d reason %q, want 3 \"third\"", got.Version, got.Reason)
	}
}

func testUpdateRequestNotFound(t *testing.T, s storage.Store) {
	r := minimalRequest("ghost", storage.StatePending, base, base)
	r.Version = 1
	err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.UpdateRequest(r) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateRequest(ghost): err = %v, want ErrNotFound", err)
	}
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Request("ghost"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("UpdateRequest created a request: Request(ghost) err = %v", err)
		}
		return nil
	})
}

func testPendingExpiring(t *testing.T, s storage.Store) {
	h := time.Hour
	create(t, s,
		minimalRequest("r1", storage.StatePending, base, base.Add(3*h)),
		minimalRequest("r2", storage.StatePending, base, base.Add(1*h)),
		minimalRequest("r3", storage.StatePending, base, base.Add(2*h)),
		minimalRequest("r4", storage.StateApproved, base, base.Add(h/2)),
		minimalRequest("r5", storage.StatePending, base, base.Add(5*h)),
		minimalRequest("r6", storage.StateDenied, base, base.Add(h)),
		// Same expiry as r2, in another zone, and a time before 1970.
		minimalRequest("r7", storage.StatePending, base, base.Add(1*h).In(time.FixedZone("X", -7*3600))),
		minimalRequest("r0", storage.StatePending, base, time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC)),
	)
	// Same instant: any order between r2 and r7 is fine, so check sets too.
	got := pendingIDs(t, s, base.Add(3*h), 100)
	if len(got) != 5 || got[0] != "r0" || got[3] != "r3" || got[4] != "r1" ||
		!(got[1] == "r2" && got[2] == "r7" || got[1] == "r7" && got[2] == "r2") {
		t.Errorf("PendingExpiring(base+3h) = %q, want [r0 r2/r7 r7/r2 r3 r1] (soonest first, bound inclusive, pending only)", got)
	}
	checkIDs(t, "PendingExpiring(base+3h, 1)", pendingIDs(t, s, base.Add(3*h), 1), "r0")
	if got := pendingIDs(t, s, base.Add(3*h), 4); len(got) != 4 || got[3] != "r3" {
		t.Errorf("PendingExpiring(base+3h, 4) = %q, want 4 ending in r3", got)
	}
	if got := pendingIDs(t, s, base.Add(3*h-1), 100); len(got) != 4 || got[3] != "r3" {
		t.Errorf("PendingExpiring(base+3h-1ns) = %q, want 4 ending in r3", got)
	}
	checkIDs(t, "PendingExpiring(1969)", pendingIDs(t, s, time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), 100))
	if got := pendingIDs(t, s, farFuture, 100); len(got) != 6 || got[5] != "r5" {
		t.Errorf("PendingExpiring(far future) = %q, want all 6 pending, ending in r5", got)
	}
}

func testPendingExpiringFollowsUpdates(t *testing.T, s storage.Store) {
	h := time.Hour
	create(t, s,
		minimalRequest("a", storage.StatePending, base, base.Add(1*h)),
		minimalRequest("b", storage.StatePending, base, base.Add(2*h)),
		minimalRequest("c", storage.StatePending, base, base.Add(3*h)),
	)
	set := func(id string, change func(*storage.Request)) {
		t.Helper()
		update(t, s, func(tx storage.Tx) error {
			r, err := tx.Request(id)
			if err != nil {
				return err
			}
			change(&r)
			return tx.UpdateRequest(r)
		})
	}
	checkIDs(t, "PendingExpiring at start", pendingIDs(t, s, farFuture, 100), "a", "b", "c")

	set("a", func(r *storage.Request) { r.State = storage.StateApproved })
	checkIDs(t, "after a is approved", pendingIDs(t, s, farFuture, 100), "b", "c")

	set("c", func(r *storage.Request) { r.ExpiresAt = base.Add(h / 2) })
	checkIDs(t, "after c expires sooner", pendingIDs(t, s, farFuture, 100), "c", "b")
	checkIDs(t, "after c expires sooner, up to base+1h", pendingIDs(t, s, base.Add(h), 100), "c")

	set("b", func(r *storage.Request) { r.ExpiresAt = base.Add(10 * h); r.Reason = "extended" })
	checkIDs(t, "after b expires later, up to base+3h", pendingIDs(t, s, base.Add(3*h), 100), "c")
	checkIDs(t, "after b expires later", pendingIDs(t, s, farFuture, 100), "c", "b")

	// An update that leaves state and expiry alone keeps the entry.
	set("c", func(r *storage.Request) { r.Reason = "still pending" })
	checkIDs(t, "after an unrelated update", pendingIDs(t, s, farFuture, 100), "c", "b")

	set("c", func(r *storage.Request) { r.State = storage.StateExpired; r.ExpiresAt = base })
	set("b", func(r *storage.Request) { r.State = storage.StateCancelled })
	checkIDs(t, "after every request left pending", pendingIDs(t, s, farFuture, 100))
}

// testPendingOf: a requester's pending requests, oldest first, follow
// state changes; other requesters' (a subject that is a prefix of
// another, the same subject at another issuer) never show.
func testPendingOf(t *testing.T, s storage.Store) {
	m := time.Minute
	by := func(r storage.Request, issuer, subject string) storage.Request {
		r.Requester = storage.Requester{Issuer: issuer, Subject: subject}
		return r
	}
	create(t, s,
		by(minimalRequest("p2", storage.StatePending, base.Add(2*m), farFuture), "github", "repo:acme/api"),
		by(minimalRequest("p1", storage.StatePending, base.Add(1*m), farFuture), "github", "repo:acme/api"),
		by(minimalRequest("d1", storage.StateApproved, base, farFuture), "github", "repo:acme/api"),
		by(minimalRequest("x1", storage.StatePending, base, farFuture), "github", "repo:acme/api-evil"),
		by(minimalRequest("x2", storage.StatePending, base, farFuture), "gitlab", "repo:acme/api"),
		by(minimalRequest("x3", storage.StatePending, base, farFuture), "github\x00repo:acme/api", ""),
	)
	pendingOf := func(issuer, subject string) []string {
		t.Helper()
		var ids []string
		view(t, s, func(tx storage.ReadTx) error {
			rs, err := tx.PendingOf(issuer, subject)
			ids = requestIDs(rs)
			return err
		})
		return ids
	}
	checkIDs(t, "PendingOf", pendingOf("github", "repo:acme/api"), "p1", "p2")
	checkIDs(t, "PendingOf unknown requester", pendingOf("github", "repo:acme"))
	update(t, s, func(tx storage.Tx) error {
		r, err := tx.Request("p1")
		if err != nil {
			return err
		}
		r.State = storage.StateCancelled
		return tx.UpdateRequest(r)
	})
	checkIDs(t, "PendingOf after p1 is cancelled", pendingOf("github", "repo:acme/api"), "p2")
}

func testRequestsFilter(t *testing.T, s storage.Store) {
	m := time.Minute
	// ids deliberately out of creation order.
	create(t, s,
		minimalRequest("r-c", storage.StatePending, base.Add(1*m), farFuture),
		minimalRequest("r-a", storage.StateApproved, base.Add(2*m), farFuture),
		minimalRequest("r-e", storage.StateDenied, base.Add(3*m), farFuture),
		minimalRequest("r-b", storage.StatePending, base.Add(4*m), farFuture),
	)
	create(t, s, minimalRequest("r-d", storage.StateExpired, base.Add(5*m), farFuture))
	create(t, s, minimalRequest("r-0", storage.StatePending, base.AddDate(-60, 0, 0), farFuture))

	checkIDs(t, "Requests(all)", listIDs(t, s, storage.RequestFilter{}), "r-d", "r-b", "r-e", "r-a", "r-c", "r-0")
	checkIDs(t, "Requests(pending)", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StatePending}}), "r-b", "r-c", "r-0")
	checkIDs(t, "Requests(approved, denied)", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StateDenied, storage.StateApproved}}), "r-e", "r-a")
	checkIDs(t, "Requests(limit 2)", listIDs(t, s, storage.RequestFilter{Limit: 2}), "r-d", "r-b")
	checkIDs(t, "Requests(pending, limit 1)", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StatePending}, Limit: 1}), "r-b")
	checkIDs(t, "Requests(limit 100)", listIDs(t, s, storage.RequestFilter{Limit: 100}), "r-d", "r-b", "r-e", "r-a", "r-c", "r-0")
	checkIDs(t, "Requests(cancelled)", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StateCancelled}}))

	// The filter follows state changes.
	update(t, s, func(tx storage.Tx) error {
		r, err := tx.Request("r-b")
		if err != nil {
			return err
		}
		r.State = storage.StateCancelled
		return tx.UpdateRequest(r)
	})
	checkIDs(t, "Requests(pending) after r-b cancelled", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StatePending}}), "r-c", "r-0")
	checkIDs(t, "Requests(cancelled) after r-b cancelled", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StateCancelled}}), "r-b")
	checkIDs(t, "Requests(all) after r-b cancelled", listIDs(t, s, storage.RequestFilter{}), "r-d", "r-b", "r-e", "r-a", "r-c", "r-0")

	// Full records come back, not just ids.
	view(t, s, func(tx storage.ReadTx) error {
		rs, err := tx.Requests(storage.RequestFilter{Limit: 1})
		if err != nil {
			return err
		}
		want := minimalRequest("r-d", storage.StateExpired, base.Add(5*m), farFuture)
		want.Version = 1
		checkRequest(t, rs[0], want)
		return nil
	})

	// Action selects one action's requests; the limit counts only those.
	other := minimalRequest("r-x", storage.StatePending, base.Add(6*m), farFuture)
	other.Action = "rollback"
	create(t, s, other)
	checkIDs(t, "Requests(action rollback)", listIDs(t, s, storage.RequestFilter{Action: "rollback"}), "r-x")
	checkIDs(t, "Requests(action deploy, limit 1)", listIDs(t, s, storage.RequestFilter{Action: "deploy", Limit: 1}), "r-d")
	checkIDs(t, "Requests(pending, action deploy)", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StatePending}, Action: "deploy"}), "r-c", "r-0")
	checkIDs(t, "Requests(pending, action rollback)", listIDs(t, s, storage.RequestFilter{States: []storage.State{storage.StatePending}, Action: "rollback"}), "r-x")
	checkIDs(t, "Requests(action none)", listIDs(t, s, storage.RequestFilter{Action: "none"}))
}

func testTxSeesOwnWrites(t *testing.T, s storage.Store) {
	update(t, s, func(tx storage.Tx) error {
		r := minimalRequest("own", storage.StatePending, base, base.Add(time.Hour))
		r.IdempotencyScope = "own-scope"
		if err := tx.CreateRequest(r); err != nil {
			return err
		}
		got, err := tx.Request("own")
		if err != nil {
			return fmt.Errorf("tx.Request after CreateRequest in the same tx: %w", err)
		}
		if got.Version != 1 {
			t.Errorf("version in the same tx = %d, want 1", got.Version)
		}
		if _, err := tx.RequestByIdempotencyScope("own-scope"); err != nil {
			return fmt.Errorf("RequestByIdempotencyScope in the same tx: %w", err)
		}
		if err := tx.UpdateRequest(got); err != nil {
			return fmt.Errorf("UpdateRequest in the same tx: %w", err)
		}
		if got, err = tx.Request("own"); err != nil || got.Version != 2 {
			t.Errorf("after UpdateRequest in the same tx: version %d err %v, want 2", got.Version, err)
		}
		if err := tx.UpdateRequest(got); err != nil {
			return fmt.Errorf("second UpdateRequest in the same tx: %w", err)
		}
		pend, err := tx.PendingExpiring(farFuture, 10)
		if err != nil {
			return err
		}
		checkIDs(t, "PendingExpiring in the same tx", requestIDs(pend), "own")
		list, err := tx.Requests(storage.RequestFilter{})
		if err != nil {
			return err
		}
		checkIDs(t, "Requests in the same tx", requestIDs(list), "own")
		if err := tx.AppendAudit(1, "h1", auditBytes(1)); err != nil {
			return err
		}
		if seq, hash, err := tx.AuditHead(); err != nil || seq != 1 || hash != "h1" {
			t.Errorf("AuditHead in the same tx = (%d, %q, %v), want (1, h1, nil)", seq, hash, err)
		}
		if err := tx.AppendAudit(2, "h2", auditBytes(2)); err != nil {
			return fmt.Errorf("second AppendAudit in the same tx: %w", err)
		}
		e, err := tx.Enqueue(sampleOutbox("own", base))
		if err != nil {
			return err
		}
		got2, err := tx.Outbox(e.ID)
		if err != nil {
			return fmt.Errorf("tx.Outbox after Enqueue in the same tx: %w", err)
		}
		checkOutbox(t, got2, e)
		e2, err := tx.Enqueue(sampleOutbox("own", base))
		if err != nil {
			return err
		}
		if e2.ID <= e.ID {
			t.Errorf("second Enqueue in one tx: id %d after %d, want increasing", e2.ID, e.ID)
		}
		return nil
	})
	if got := getRequest(t, s, "own"); got.Version != 3 {
		t.Errorf("version after commit = %d, want 3", got.Version)
	}
	checkAudit(t, s, 1, 2)
}

// testTxUsableAfterRefusal checks that a refused operation (duplicate,
// conflict, not found) changes nothing and leaves the transaction usable, so
// that a caller can, say, fall back from CreateRequest's ErrAlreadyExists to
// RequestByIdempotencyScope in the same Update.
func testTxUsableAfterRefusal(t *testing.T, s storage.Store) {
	r, e := seed(t, s)
	update(t, s, func(tx storage.Tx) error {
		dup := minimalRequest("other", storage.StatePending, base, base)
		dup.IdempotencyScope = r.IdempotencyScope
		if err := tx.CreateRequest(dup); !errors.Is(err, storage.ErrAlreadyExists) {
			return fmt.Errorf("CreateRequest with a taken scope: err = %v, want ErrAlreadyExists", err)
		}
		if _, err := tx.RequestByIdempotencyScope(r.IdempotencyScope); err != nil {
			return fmt.Errorf("RequestByIdempotencyScope after a refused create: %w", err)
		}
		if err := tx.CreateRequest(minimalRequest(r.ID, storage.StateDenied, base, base)); !errors.Is(err, storage.ErrAlreadyExists) {
			return fmt.Errorf("CreateRequest with a taken id: err = %v, want ErrAlreadyExists", err)
		}
		stale := r
		stale.Version = 9
		stale.State = storage.StateDenied
		if err := tx.UpdateRequest(stale); !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("UpdateRequest with a wrong version: err = %v, want ErrConflict", err)
		}
		if err := tx.AppendAudit(5, "h5", nil); !errors.Is(err, storage.ErrConflict) {
			return fmt.Errorf("AppendAudit(5) with head 1: err = %v, want ErrConflict", err)
		}
		if err := tx.DeleteOutbox(e.ID + 100); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("DeleteOutbox of a missing entry: err = %v, want ErrNotFound", err)
		}
		missing := e
		missing.ID = e.ID + 100
		if err := tx.PutOutbox(missing); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("PutOutbox of a missing entry: err = %v, want ErrNotFound", err)
		}
		dupAttempt := sampleAttempt(seedAttempts[0].ID, farFuture)
		if err := tx.CreateLinkAttempt(dupAttempt); !errors.Is(err, storage.ErrAlreadyExists) {
			return fmt.Errorf("CreateLinkAttempt with a taken id: err = %v, want ErrAlreadyExists", err)
		}
		if err := tx.PutLinkAttempt(sampleAttempt("missing-attempt", base)); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("PutLinkAttempt of a missing attempt: err = %v, want ErrNotFound", err)
		}
		if err := tx.DeleteLinkAttempt("missing-attempt"); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("DeleteLinkAttempt of a missing attempt: err = %v, want ErrNotFound", err)
		}
		if err := tx.DeleteLink("slack", "T2", "U1"); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("DeleteLink of a missing link: err = %v, want ErrNotFound", err)
		}
		// Nothing was changed by the refusals, and the tx still writes.
		return tx.AppendAudit(2, "h2", auditBytes(2))
	})
	checkAudit(t, s, 1, 2)
	checkRequest(t, getRequest(t, s, r.ID), r)
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Request("other"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Request(other) after a refused create: err = %v, want ErrNotFound", err)
		}
		got, err := tx.Outbox(e.ID)
		if err != nil {
			return err
		}
		checkOutbox(t, got, e)
		return checkOnlySeedLinks(t, tx)
	})
}

func auditHead(t *testing.T, s storage.Store) (uint64, string) {
	t.Helper()
	var seq uint64
	var hash string
	view(t, s, func(tx storage.ReadTx) error {
		var err error
		seq, hash, err = tx.AuditHead()
		return err
	})
	return seq, hash
}

func testAuditAppend(t *testing.T, s storage.Store) {
	if seq, hash := auditHead(t, s); seq != 0 || hash != "" {
		t.Fatalf("AuditHead of an empty log = (%d, %q), want (0, \"\")", seq, hash)
	}
	appendAudit := func(seq uint64, hash string, rec []byte) error {
		return s.Update(t.Context(), func(tx storage.Tx) error { return tx.AppendAudit(seq, hash, rec) })
	}
	for _, seq := range []uint64{0, 2} {
		if err := appendAudit(seq, "x", []byte("x")); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("AppendAudit(%d) on an empty log: err = %v, want ErrConflict", seq, err)
		}
	}
	records := [][]byte{
		auditBytes(1),
		{},                                   // empty
		bytes.Repeat([]byte{0, 0xff}, 40000), // larger than a page
		[]byte(`{"seq":4,"note":"  spaces  and \n newline "}` + "\n"),
	}
	for i, rec := range records {
		seq := uint64(i + 1)
		if err := appendAudit(seq, fmt.Sprintf("hash-%d", seq), rec); err != nil {
			t.Fatalf("AppendAudit(%d): %v", seq, err)
		}
	}
	if seq, hash := auditHead(t, s); seq != 4 || hash != "hash-4" {
		t.Errorf("AuditHead = (%d, %q), want (4, \"hash-4\")", seq, hash)
	}
	for _, seq := range []uint64{0, 1, 4, 6, 1 << 63} {
		if err := appendAudit(seq, "fork", []byte("fork")); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("AppendAudit(%d) with head 4: err = %v, want ErrConflict", seq, err)
		}
	}
	if seq, hash := auditHead(t, s); seq != 4 || hash != "hash-4" {
		t.Errorf("AuditHead after refused appends = (%d, %q), want (4, \"hash-4\")", seq, hash)
	}
	var got [][]byte
	err := s.AuditRecords(t.Context(), 0, func(seq uint64, rec []byte) error {
		if seq != uint64(len(got)+1) {
			return fmt.Errorf("record %d after %d records", seq, len(got))
		}
		got = append(got, bytes.Clone(rec))
		return nil
	})
	if err != nil {
		t.Fatalf("AuditRecords: %v", err)
	}
	if len(got) != len(records) {
		t.Fatalf("AuditRecords gave %d records, want %d", len(got), len(records))
	}
	for i := range records {
		if !bytes.Equal(got[i], records[i]) {
			t.Errorf("record %d: read back %d bytes %.40q, want %d bytes %.40q", i+1, len(got[i]), got[i], len(records[i]), records[i])
		}
	}
}

func testAuditBytesCopied(t *testing.T, s storage.Store) {
	update(t, s, func(tx storage.Tx) error {
		buf := auditBytes(1)
		err := tx.AppendAudit(1, "h1", buf)
		// The caller reuses its buffer before the commit.
		for i := range buf {
			buf[i] = 'X'
		}
		return err
	})
	checkAudit(t, s, 1, 1)
}

func writeAudit(t *testing.T, s storage.Store, n uint64) {
	t.Helper()
	const perTx = 500
	for from := uint64(1); from <= n; from += perTx {
		update(t, s, func(tx storage.Tx) error {
			for seq := from; seq < from+perTx && seq <= n; seq++ {
				if err := tx.AppendAudit(seq, fmt.Sprintf("h%d", seq), auditBytes(seq)); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

func testAuditRecords(t *testing.T, s storage.Store) {
	if err := s.AuditRecords(t.Context(), 0, func(uint64, []byte) error {
		return errors.New("called on an empty log")
	}); err != nil {
		t.Fatalf("AuditRecords on an empty log: %v", err)
	}
	const n = 2500 // more than one chunk for any sensible chunk size
	writeAudit(t, s, n)
	checkAudit(t, s, 0+1, n)
	checkAudit(t, s, 1234, n)
	checkAudit(t, s, 1000, n)
	checkAudit(t, s, 1001, n)
	checkAudit(t, s, n, n)
	for _, from := range []uint64{n + 1, 1 << 62} {
		if err := s.AuditRecords(t.Context(), from, func(seq uint64, _ []byte) error {
			return fmt.Errorf("record %d", seq)
		}); err != nil {
			t.Errorf("AuditRecords(%d) past the head: %v", from, err)
		}
	}
	// from 0 starts at the first record.
	first := uint64(0)
	errStop := errors.New("stop")
	err := s.AuditRecords(t.Context(), 0, func(seq uint64, _ []byte) error {
		first = seq
		return errStop
	})
	if !errors.Is(err, errStop) || first != 1 {
		t.Errorf("AuditRecords(0): first record %d (err %v), want 1", first, err)
	}
}

func testAuditRecordsStop(t *testing.T, s storage.Store) {
	writeAudit(t, s, 2500)
	errStop := errors.New("stop here")
	var calls, last uint64
	err := s.AuditRecords(t.Context(), 1, func(seq uint64, _ []byte) error {
		calls++
		last = seq
		if seq == 1500 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("AuditRecords: err = %v, want the error fn returned", err)
	}
	if calls != 1500 || last != 1500 {
		t.Errorf("fn called %d times, last with %d; want it to stop at 1500", calls, last)
	}
}

func testAuditRecordsCancelled(t *testing.T, s storage.Store) {
	const n = 2500
	writeAudit(t, s, n)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	calls := 0
	err := s.AuditRecords(ctx, 1, func(uint64, []byte) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("AuditRecords with ctx cancelled during the walk: err = %v, want context.Canceled", err)
	}
	if calls == n {
		t.Errorf("AuditRecords walked all %d records after ctx was cancelled", n)
	}

	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	err = s.AuditRecords(ctx, 1, func(uint64, []byte) error { return errors.New("called with a cancelled ctx") })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("AuditRecords with a cancelled ctx: err = %v, want context.Canceled", err)
	}
}

func testOutboxEnqueue(t *testing.T, s storage.Store) {
	var got []storage.OutboxEntry
	in := sampleOutbox("req-1", base)
	in.LeaseUntil = base.Add(time.Minute)
	in.Attempts = 2
	in.LastError = "503"
	update(t, s, func(tx storage.Tx) error {
		got = got[:0]
		for range 3 {
			e, err := tx.Enqueue(in)
			if err != nil {
				return err
			}
			got = append(got, e)
		}
		return nil
	})
	update(t, s, func(tx storage.Tx) error {
		e, err := tx.Enqueue(in)
		got = append(got[:3], e)
		return err
	})
	for i, e := range got {
		if i > 0 && e.ID <= got[i-1].ID {
			t.Errorf("Enqueue ids %d then %d, want increasing", got[i-1].ID, e.ID)
		}
		if e.ID == 0 {
			t.Errorf("Enqueue gave id 0")
		}
		want := in
		want.ID = e.ID
		checkOutbox(t, e, want)
	}
	view(t, s, func(tx storage.ReadTx) error {
		for _, want := range got {
			e, err := tx.Outbox(want.ID)
			if err != nil {
				return fmt.Errorf("Outbox(%d): %w", want.ID, err)
			}
			checkOutbox(t, e, want)
		}
		return nil
	})
	// Ids are never reused, even when the newest entry is gone.
	last := got[len(got)-1].ID
	update(t, s, func(tx storage.Tx) error { return tx.DeleteOutbox(last) })
	var next storage.OutboxEntry
	update(t, s, func(tx storage.Tx) error {
		var err error
		next, err = tx.Enqueue(in)
		return err
	})
	if next.ID <= last {
		t.Errorf("Enqueue after deleting id %d gave id %d, want more", last, next.ID)
	}
}

// testOutboxDueByKind: a backlog of one kind never hides another kind's
// due entries, however long it is.
func testOutboxDueByKind(t *testing.T, s storage.Store) {
	var want []uint64
	update(t, s, func(tx storage.Tx) error {
		for i := 0; i < 300; i++ {
			e := sampleOutbox("req", base.Add(-time.Hour))
			e.Kind = "notify.slack"
			if _, err := tx.Enqueue(e); err != nil {
				return err
			}
		}
		for i := 0; i < 3; i++ {
			e := sampleOutbox("req", base.Add(-time.Minute))
			e.Kind = "execute"
			got, err := tx.Enqueue(e)
			if err != nil {
				return err
			}
			want = append(want, got.ID)
		}
		return nil
	})
	view(t, s, func(tx storage.ReadTx) error {
		due, err := tx.DueOutbox(base, "execute", 2)
		if err != nil {
			return err
		}
		if len(due) != 2 || due[0].ID != want[0] || due[1].ID != want[1] {
			t.Errorf("DueOutbox(execute, 2) = %v, want ids %v", due, want[:2])
		}
		all, err := tx.DueOutbox(base, "notify.", 0)
		if err != nil {
			return err
		}
		if len(all) != 300 {
			t.Errorf("DueOutbox(notify.) = %d entries, want 300", len(all))
		}
		return nil
	})
}

func testOutboxDue(t *testing.T, s storage.Store) {
	now := base
	entry := func(next, lease time.Time) storage.OutboxEntry {
		e := sampleOutbox("req", next)
		e.LeaseUntil = lease
		return e
	}
	specs := []storage.OutboxEntry{
		entry(now.Add(-time.Minute), time.Time{}),                                 // 0 due
		entry(now.Add(time.Minute), time.Time{}),                                  // 1 not yet
		entry(now.Add(-2*time.Minute), now.Add(time.Second)),                      // 2 leased
		entry(now, now.Add(-time.Second)),                                         // 3 due: bounds inclusive, lease over
		entry(now.Add(-5*time.Minute), now),                                       // 4 due: lease ends now
		entry(now.Add(-time.Minute).In(time.FixedZone("Y", 5*3600)), time.Time{}), // 5 due, other zone
	}
	var ids []uint64
	update(t, s, func(tx storage.Tx) error {
		ids = ids[:0]
		for _, e := range specs {
			got, err := tx.Enqueue(e)
			if err != nil {
				return err
			}
			ids = append(ids, got.ID)
		}
		return nil
	})
	due := func(at time.Time, limit int) []uint64 {
		t.Helper()
		var out []uint64
		view(t, s, func(tx storage.ReadTx) error {
			es, err := tx.DueOutbox(at, "", limit)
			for _, e := range es {
				out = append(out, e.ID)
			}
			return err
		})
		return out
	}
	want := []uint64{ids[0], ids[3], ids[4], ids[5]}
	if got := due(now, 100); !slices.Equal(got, want) {
		t.Errorf("DueOutbox(now) = %v, want %v (id order; NextAttempt and LeaseUntil at or before now)", got, want)
	}
	if got := due(now, 2); !slices.Equal(got, want[:2]) {
		t.Errorf("DueOutbox(now, 2) = %v, want %v", got, want[:2])
	}
	if got := due(now.Add(time.Minute), 100); !slices.Equal(got, ids) {
		t.Errorf("DueOutbox(now+1m) = %v, want all %v", got, ids)
	}
	if got := due(now.Add(-time.Hour), 100); len(got) != 0 {
		t.Errorf("DueOutbox(now-1h) = %v, want none", got)
	}
}

func testOutboxPutDelete(t *testing.T, s storage.Store) {
	var a, b storage.OutboxEntry
	update(t, s, func(tx storage.Tx) error {
		var err error
		if a, err = tx.Enqueue(sampleOutbox("req", base)); err != nil {
			return err
		}
		b, err = tx.Enqueue(sampleOutbox("req", base))
		return err
	})

	// A worker leases a, then records a failed attempt.
	leased := a
	leased.LeaseUntil = base.Add(time.Minute)
	update(t, s, func(tx storage.Tx) error { return tx.PutOutbox(leased) })
	retry := leased
	retry.Attempts = 1
	retry.LastError = "slack: rate limited"
	retry.NextAttempt = base.Add(30 * time.Second).In(time.FixedZone("Z", 3600))
	retry.LeaseUntil = time.Time{}
	update(t, s, func(tx storage.Tx) error { return tx.PutOutbox(retry) })
	view(t, s, func(tx storage.ReadTx) error {
		got, err := tx.Outbox(a.ID)
		if err != nil {
			return err
		}
		checkOutbox(t, got, retry)
		due, err := tx.DueOutbox(base, "", 10)
		if err != nil {
			return err
		}
		if len(due) != 1 || due[0].ID != b.ID {
			t.Errorf("DueOutbox after PutOutbox = %v, want only %d", due, b.ID)
		}
		return nil
	})

	update(t, s, func(tx storage.Tx) error { return tx.DeleteOutbox(b.ID) })
	err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.DeleteOutbox(b.ID) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteOutbox twice: err = %v, want ErrNotFound", err)
	}
	err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.PutOutbox(b) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("PutOutbox of a deleted entry: err = %v, want ErrNotFound", err)
	}
	err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.DeleteOutbox(999999) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteOutbox(999999): err = %v, want ErrNotFound", err)
	}
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Outbox(b.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Outbox of a deleted entry: err = %v, want ErrNotFound", err)
		}
		due, err := tx.DueOutbox(farFuture, "", 10)
		if err != nil {
			return err
		}
		if len(due) != 1 || due[0].ID != a.ID {
			t.Errorf("DueOutbox after delete = %v, want only %d", due, a.ID)
		}
		return nil
	})
}

// seed writes one request, audit record 1, one outbox entry, seedLinks and
// seedAttempts.
func seed(t *testing.T, s storage.Store) (storage.Request, storage.OutboxEntry) {
	t.Helper()
	r := minimalRequest("seed", storage.StatePending, base, base.Add(time.Hour))
	r.IdempotencyScope = "seed-scope"
	var e storage.OutboxEntry
	update(t, s, func(tx storage.Tx) error {
		if err := tx.CreateRequest(r); err != nil {
			return err
		}
		if err := tx.AppendAudit(1, "h1", auditBytes(1)); err != nil {
			return err
		}
		var err error
		if e, err = tx.Enqueue(sampleOutbox("seed", base)); err != nil {
			return err
		}
		return putLinkRecords(tx, seedLinks, seedAttempts)
	})
	r.Version = 1
	return r, e
}

// writeEverything changes each kind of record: used to show that a failed
// Update leaves no trace.
func writeEverything(tx storage.Tx, seeded storage.Request, seededEntry storage.OutboxEntry) error {
	r := sampleRequest("doomed", base.Add(time.Minute))
	r.IdempotencyScope = "doomed-scope"
	if err := tx.CreateRequest(r); err != nil {
		return err
	}
	seeded.State = storage.StateApproved
	if err := tx.UpdateRequest(seeded); err != nil {
		return err
	}
	if err := tx.AppendAudit(2, "h2", auditBytes(2)); err != nil {
		return err
	}
	if _, err := tx.Enqueue(sampleOutbox("doomed", base)); err != nil {
		return err
	}
	seededEntry.Attempts = 9
	if err := tx.PutOutbox(seededEntry); err != nil {
		return err
	}
	return writeLinkRecords(tx)
}

// checkOnlySeed checks that the store holds what seed wrote and nothing else.
func checkOnlySeed(t *testing.T, s storage.Store, r storage.Request, e storage.OutboxEntry) {
	t.Helper()
	view(t, s, func(tx storage.ReadTx) error {
		if _, err := tx.Request("doomed"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Request(doomed): err = %v, want ErrNotFound", err)
		}
		if _, err := tx.RequestByIdempotencyScope("doomed-scope"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("RequestByIdempotencyScope(doomed-scope): err = %v, want ErrNotFound", err)
		}
		got, err := tx.Request(r.ID)
		if err != nil {
			return err
		}
		checkRequest(t, got, r)
		if err := checkRequestLists(t, tx, "", []string{r.ID}, r.ID); err != nil {
			return err
		}
		if seq, hash, err := tx.AuditHead(); err != nil || seq != 1 || hash != "h1" {
			t.Errorf("AuditHead = (%d, %q, %v), want (1, h1, nil)", seq, hash, err)
		}
		due, err := tx.DueOutbox(farFuture, "", 100)
		if err != nil {
			return err
		}
		if len(due) != 1 {
			t.Fatalf("DueOutbox: %d entries, want only the seeded one", len(due))
		}
		checkOutbox(t, due[0], e)
		return checkOnlySeedLinks(t, tx)
	})
	checkAudit(t, s, 1, 1)
}

func testUpdateErrorAtomic(t *testing.T, s storage.Store) {
	r, e := seed(t, s)
	errBoom := errors.New("boom")
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		if err := writeEverything(tx, r, e); err != nil {
			return fmt.Errorf("writeEverything: %w", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Update: err = %v, want the error fn returned", err)
	}
	checkOnlySeed(t, s, r, e)

	// The same writes go through when fn succeeds: the rollback left the
	// audit head and the request's version where they were.
	update(t, s, func(tx storage.Tx) error { return writeEverything(tx, r, e) })
	if got := getRequest(t, s, "seed"); got.Version != 2 {
		t.Errorf("version after a good update = %d, want 2", got.Version)
	}
}

func testUpdatePanic(t *testing.T, s storage.Store) {
	r, e := seed(t, s)
	var err error
	panicked := func() (v any) {
		defer func() { v = recover() }()
		err = s.Update(t.Context(), func(tx storage.Tx) error {
			if err := writeEverything(tx, r, e); err != nil {
				return err
			}
			panic("update function bug")
		})
		return nil
	}()
	// A backend may return the panic as an error or let it reach the caller;
	// it must not swallow it, and must not keep any write.
	if panicked == nil && err == nil {
		t.Fatalf("Update with a panicking fn returned nil")
	}
	checkOnlySeed(t, s, r, e)
	update(t, s, func(tx storage.Tx) error { return writeEverything(tx, r, e) })
	if seq, _ := auditHead(t, s); seq != 2 {
		t.Errorf("AuditHead after a good update = %d, want 2", seq)
	}
}

func testUpdateCancelled(t *testing.T, s storage.Store) {
	r, e := seed(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Update(ctx, func(tx storage.Tx) error { return writeEverything(tx, r, e) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled ctx: err = %v, want context.Canceled", err)
	}
	checkOnlySeed(t, s, r, e)
}

// testConcurrentAuditChain has 32 writers extend one hash chain, each reading
// the head and appending the next record in one Update. The result must be
// one chain 1..N with no gap and no fork.
func testConcurrentAuditChain(t *testing.T, s storage.Store) {
	const writers, each = 32, 16
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := appendLinked(t.Context(), s, fmt.Sprintf("w%02d-%02d", w, i)); err != nil {
					errs <- fmt.Errorf("writer %d record %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	seen := map[string]bool{}
	prev := ""
	next := uint64(1)
	err := s.AuditRecords(t.Context(), 1, func(seq uint64, rec []byte) error {
		if seq != next {
			return fmt.Errorf("record %d where %d was expected (gap)", seq, next)
		}
		next++
		var l link
		if err := json.Unmarshal(rec, &l); err != nil {
			return fmt.Errorf("record %d: %w", seq, err)
		}
		if l.Prev != prev {
			return fmt.Errorf("record %d links to %q, want %q (fork)", seq, l.Prev, prev)
		}
		if seen[l.Name] {
			return fmt.Errorf("record %d: %s written twice", seq, l.Name)
		}
		seen[l.Name] = true
		prev = chainHash(prev, rec)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := next - 1; n != writers*each {
		t.Fatalf("chain has %d records, want %d", n, writers*each)
	}
	if seq, hash := auditHead(t, s); seq != writers*each || hash != prev {
		t.Errorf("AuditHead = (%d, %q), want (%d, %q)", seq, hash, writers*each, prev)
	}
}

type link struct {
	Name string `json:"name"`
	Prev string `json:"prev"`
}

func chainHash(prev string, rec []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(rec)
	return hex.EncodeToString(h.Sum(nil))
}

// appendLinked appends one record after the current head, retrying if it
// lost a race (a backend may report ErrConflict instead of serializing).
func appendLinked(ctx context.Context, s storage.Store, name string) error {
	for range 1000 {
		err := s.Update(ctx, func(tx storage.Tx) error {
			seq, prev, err := tx.AuditHead()
			if err != nil {
				return err
			}
			rec, err := json.Marshal(link{Name: name, Prev: prev})
			if err != nil {
				return err
			}
			return tx.AppendAudit(seq+1, chainHash(prev, rec), rec)
		})
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return errors.New("still conflicting after 1000 attempts")
}

// testConcurrentCAS has 32 goroutines increment a counter in one request by
// reading it in a View and writing it in an Update, retrying on ErrConflict.
// Compare-and-swap must lose no increment and count every one.
func testConcurrentCAS(t *testing.T, s storage.Store) {
	const workers, each = 32, 4
	create(t, s, minimalRequest("counter", storage.StatePending, base, base.Add(time.Hour)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < each; {
				var r storage.Request
				err := s.View(t.Context(), func(tx storage.ReadTx) error {
					var err error
					r, err = tx.Request("counter")
					return err
				})
				if err != nil {
					errs <- err
					return
				}
				r.MinApprovals++
				r.Reason = fmt.Sprintf("worker %d step %d", w, i)
				err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.UpdateRequest(r) })
				switch {
				case err == nil:
					i++
				case errors.Is(err, storage.ErrConflict):
					mu.Lock()
					conflicts++
					mu.Unlock()
				default:
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := getRequest(t, s, "counter")
	if want := 1 + workers*each; got.MinApprovals != want || got.Version != uint64(1+workers*each) {
		t.Errorf("after %d increments: counter %d, version %d; want %d and %d", workers*each, got.MinApprovals, got.Version, want, 1+workers*each)
	}
	t.Logf("%d increments, %d conflicts retried", workers*each, conflicts)
}

func testClosed(t *testing.T, s storage.Store) {
	seed(t, s)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on an open store: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	called := false
	err := s.Update(t.Context(), func(storage.Tx) error { called = true; return nil })
	if !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Update after Close: err = %v, want ErrClosed", err)
	}
	if called {
		t.Errorf("Update after Close ran fn")
	}
	err = s.View(t.Context(), func(storage.ReadTx) error { called = true; return nil })
	if !errors.Is(err, storage.ErrClosed) {
		t.Errorf("View after Close: err = %v, want ErrClosed", err)
	}
	if err := s.AuditRecords(t.Context(), 1, func(uint64, []byte) error { called = true; return nil }); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("AuditRecords after Close: err = %v, want ErrClosed", err)
	}
	if called {
		t.Errorf("a function ran after Close")
	}
	if err := s.Ping(t.Context()); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Ping after Close: err = %v, want ErrClosed", err)
	}
}
