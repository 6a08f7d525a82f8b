package linkflow_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/internal/testop"
	"github.com/signoff-dev/signoff/oidc/linkflow"
	"github.com/signoff-dev/signoff/policy"
)

// The promise this attacks: an approver named by email in approvers.users
// is the person whose email the IdP vouches for. A link proved by Entra
// object id stores whatever email the IdP sends; where a user may set
// their own email at the IdP, that email must not make them the approver
// it names. It still names them for the self-approval check.
func TestUnvouchedEmailNamesNoApprover(t *testing.T) {
	teamsMallory := linkflow.PlatformUser{Platform: "teams", Workspace: "tenant-1", UserID: "obj-mallory", Conversation: "19:c@thread.tacv2"}
	// Mallory's own Entra account, whose email she set to alice's; Entra
	// sends no email_verified.
	entraMallory := testop.User{ID: "sub-entra-mallory", Username: "entra-mallory", Password: "pw", Name: "Mallory",
		Email: "alice@example.com", NoEmailVerified: true, Extra: map[string]any{"oid": "OBJ-MALLORY"}}

	e := newEnv(t)
	e.svc.Policy().Actions["named"] = &policy.Action{
		Name: "named", Requesters: []policy.RequesterRule{{Issuer: "github"}},
		Approvers: policy.Approvers{Users: []string{"alice@example.com"}, MinApprovals: 1}, TTL: time.Hour,
	}
	e.linker.SetDirectory("teams", e.dir)
	e.op.AddUser(entraMallory)
	e.dir.set(teamsMallory, linkflow.ChatAccount{ObjectID: "obj-mallory", Email: "mallory@example.com"})
	status, body := e.completeAs(e.begin(teamsMallory), entraMallory)
	wantStatus(t, "link by oid", status, http.StatusOK, body)
	if l := e.mustLink(teamsMallory); l.MatchedBy != linkflow.MatchedByOID || l.Email != "alice@example.com" || !l.EmailUnverified {
		t.Fatalf("link = %+v, want proved by oid, its email marked unverified", l)
	}
	id, err := e.resolve(teamsMallory)
	if err != nil || !id.EmailUnverified {
		t.Fatalf("Resolve = %+v, %v", id, err)
	}
	r := e.create("named")
	if _, err := e.vote(teamsMallory, id, r.ID); !errors.Is(err, approvals.ErrNotEligible) {
		t.Fatalf("vote as the approver named by an unvouched email: %v, want ErrNotEligible", err)
	}
	// The email still names her for the self-approval check.
	if !policy.IsSelf("alice@example.com", id.Person()) {
		t.Fatal("an unvouched email no longer counts for self-approval")
	}

	// Once the IdP vouches for the email (Entra's xms_edov), the next
	// refresh records it, and the email names the approver.
	entraMallory.Extra = map[string]any{"oid": "OBJ-MALLORY", "xms_edov": true}
	e.op.AddUser(entraMallory)
	e.clk.Advance(25 * time.Hour)
	id, err = e.resolve(teamsMallory)
	if err != nil || id.EmailUnverified || e.mustLink(teamsMallory).EmailUnverified {
		t.Fatalf("after a refresh with xms_edov: %+v, %v", id, err)
	}
	if res, err := e.vote(teamsMallory, id, e.create("named").ID); err != nil || !res.Counted {
		t.Fatalf("vote once the IdP vouches for the email: %+v, %v", res, err)
	}
}
