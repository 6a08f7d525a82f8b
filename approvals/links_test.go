package approvals_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/storage"
)

func sampleLink(subject string, groups ...string) storage.IdentityLink {
	return storage.IdentityLink{
		Platform: "slack", Workspace: "T1", PlatformUser: "U1",
		Issuer: "https://idp.example", Subject: subject, Email: subject + "@example.com", Groups: groups,
		LinkedAt: t0, VerifiedAt: t0, RefreshToken: []byte("sealed-bytes"),
	}
}

func TestLinkLifecycleIsAudited(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	if _, err := h.svc.Link(ctx, "slack", "T1", "U1"); !errors.Is(err, approvals.ErrNotLinked) {
		t.Fatalf("unlinked account: %v", err)
	}
	if err := h.svc.SaveLink(ctx, sampleLink("alice", "sre"), ""); err != nil {
		t.Fatal(err)
	}
	// Another workspace is another account.
	if _, err := h.svc.Link(ctx, "slack", "T2", "U1"); !errors.Is(err, approvals.ErrNotLinked) {
		t.Fatalf("link leaked across workspaces: %v", err)
	}
	// Re-linking to another identity replaces the link: unlinked + linked.
	if err := h.svc.SaveLink(ctx, sampleLink("bob", "sre"), ""); err != nil {
		t.Fatal(err)
	}
	refreshed := sampleLink("bob", "dev")
	refreshed.VerifiedAt = t0.Add(time.Hour)
	if err := h.svc.RefreshLink(ctx, refreshed); err != nil {
		t.Fatal(err)
	}
	// A refresh may not swap the identity behind a link.
	if err := h.svc.RefreshLink(ctx, sampleLink("mallory", "sre")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("refresh to another identity: %v", err)
	}
	if err := h.svc.MarkLinkStale(ctx, "slack", "T1", "U1", "invalid_grant"); err != nil {
		t.Fatal(err)
	}
	l, err := h.svc.Link(ctx, "slack", "T1", "U1")
	if err != nil || !l.Stale || l.RefreshToken != nil || l.Subject != "bob" {
		t.Fatalf("stale link: %+v %v", l, err)
	}
	if err := h.svc.Unlink(ctx, "slack", "T1", "U1", "revoked by operator"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Unlink(ctx, "slack", "T1", "U1", "again"); !errors.Is(err, approvals.ErrNotLinked) {
		t.Fatalf("second unlink: %v", err)
	}
	recs := h.records()
	want := []string{audit.TypeIdentityLinked, audit.TypeIdentityUnlinked, audit.TypeIdentityLinked,
		approvals.TypeIdentityRefreshed, approvals.TypeIdentityStale, audit.TypeIdentityUnlinked}
	if got := types(recs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit types %v, want %v", got, want)
	}
	for _, r := range recs {
		if r.Actor == nil || r.Actor.PlatformUser != "U1" || r.Actor.Workspace != "T1" {
			t.Fatalf("record without the chat account: %+v", r)
		}
	}
	if recs[3].Data["previous_groups"] == nil {
		t.Fatalf("refresh record lacks the previous groups: %+v", recs[3].Data)
	}
	// The sealed refresh token never reaches the audit log.
	err = h.store.AuditRecords(ctx, 1, func(_ uint64, line []byte) error {
		if strings.Contains(string(line), "sealed-bytes") || strings.Contains(string(line), "c2VhbGVkLWJ5dGVz") {
			return fmt.Errorf("refresh token in audit record: %s", line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
