package approvals_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/approvals/audit"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

var admin = audit.Actor{Issuer: "https://idp.example", Subject: "root", Email: "root@example.com", Name: "Root"}

// TestUnlinkByAdmin: the record's actor is the admin and its data holds
// the link's chat account and identity; nothing of the refresh token; the
// link is gone.
func TestUnlinkByAdmin(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	if err := h.svc.SaveLink(ctx, sampleLink("alice", "sre"), ""); err != nil {
		t.Fatal(err)
	}
	by := admin
	removed, err := h.svc.UnlinkBy(ctx, "slack", "T1", "U1", "laptop stolen", &by)
	if err != nil {
		t.Fatal(err)
	}
	if removed.Subject != "alice" || removed.RefreshToken != nil {
		t.Errorf("UnlinkBy returned %+v", removed)
	}
	if _, err := h.svc.Link(ctx, "slack", "T1", "U1"); !errors.Is(err, approvals.ErrNotLinked) {
		t.Fatalf("the link survived: %v", err)
	}
	if _, err := h.svc.UnlinkBy(ctx, "slack", "T1", "U1", "again", &by); !errors.Is(err, approvals.ErrNotLinked) {
		t.Fatalf("second revoke: %v", err)
	}
	recs := h.records()
	r := recs[len(recs)-1]
	if r.Type != audit.TypeIdentityUnlinked || r.Actor == nil || *r.Actor != admin {
		t.Fatalf("record %s by %+v, want identity.unlinked by the admin", r.Type, r.Actor)
	}
	link, _ := r.Data["link"].(map[string]any)
	if r.Data["reason"] != "laptop stolen" || link["platform"] != "slack" || link["workspace"] != "T1" || link["platform_user"] != "U1" ||
		link["issuer"] != "https://idp.example" || link["subject"] != "alice" || link["email"] != "alice@example.com" {
		t.Errorf("data %v", r.Data)
	}
	for _, line := range testenv.AuditLines(t, h.store) {
		if strings.Contains(string(line), "sealed-bytes") {
			t.Fatal("the refresh token reached the audit log")
		}
	}
}

// TestCancelByAdmin: an admin cancels someone else's request only with a
// reason; the record names the admin and the reason; the state's
// DecidedBy says admin; a decided request is not pending.
func TestCancelByAdmin(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	ctx := context.Background()
	r := h.create("deploy-prod", deployParams())
	by := &approvals.AdminPerson{Issuer: "idp", Subject: "root", Actor: admin}
	for _, reason := range []string{"", "   ", strings.Repeat("x", approvals.MaxReasonBytes+1)} {
		_, err := h.svc.Cancel(ctx, r.ID, approvals.Canceller{Admin: by, Reason: reason})
		if !errors.Is(err, approvals.ErrInvalid) {
			t.Errorf("admin cancel with reason %.10q: %v", reason, err)
		}
	}
	out, err := h.svc.Cancel(ctx, r.ID, approvals.Canceller{Admin: by, Reason: "wrong train"})
	if err != nil {
		t.Fatal(err)
	}
	if out.State != storage.StateCancelled || out.DecidedBy != "admin" {
		t.Errorf("after the cancel: %s by %s", out.State, out.DecidedBy)
	}
	recs := h.records()
	rec := recs[len(recs)-1]
	if rec.Type != audit.TypeRequestCancelled || rec.Actor == nil || *rec.Actor != admin || rec.Data["reason"] != "wrong train" || rec.Data["by"] != "admin" {
		t.Fatalf("record %+v", rec)
	}
	_, err = h.svc.Cancel(ctx, r.ID, approvals.Canceller{Admin: by, Reason: "again"})
	var refused *approvals.RefusalError
	if !errors.As(err, &refused) || refused.Reason != approvals.ReasonNotPending || !strings.Contains(refused.Message, "already cancelled") {
		t.Fatalf("cancel of a cancelled request: %v", err)
	}
	// Without Admin the requester check stands.
	r2 := h.create("deploy-prod", deployParams())
	if _, err := h.svc.Cancel(ctx, r2.ID, approvals.Canceller{Issuer: "idp", Subject: "root", Reason: "mine now"}); !errors.Is(err, approvals.ErrForbidden) {
		t.Fatalf("a non-admin cancel of someone else's request: %v", err)
	}
}

// TestRecordBackup: admin.backup names the admin.
func TestRecordBackup(t *testing.T) {
	h := newHarness(t, approvals.Options{})
	if err := h.svc.RecordBackup(context.Background(), admin, nil); err != nil {
		t.Fatal(err)
	}
	recs := h.records()
	if len(recs) != 1 || recs[0].Type != approvals.TypeAdminBackup || recs[0].Actor == nil || *recs[0].Actor != admin {
		t.Fatalf("records %+v", recs)
	}
}
