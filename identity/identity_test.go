package identity_test

import (
	"encoding/json"
	"go/build"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/identity"
	"github.com/signoff-dev/signoff/storage"
)

var (
	t0   = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	acct = identity.Account{Platform: "slack", Workspace: "T1", User: "U1"}
	who  = identity.Identity{
		Issuer: "https://idp.example", Subject: "sub-alice", Email: "alice@example.com", Name: "Alice",
		PreferredUsername: "alice", Groups: []string{"sre"}, PersonClaims: map[string][]string{"github": {"alice-gh"}},
		VerifiedAt: t0, AuthTime: t0.Add(-time.Minute), ACR: "mfa", AMR: []string{"pwd", "otp"},
	}
)

// TestLinkRoundTrip: a link made from an identity vouches for that same
// identity, for that same chat account, and shares no memory with it.
func TestLinkRoundTrip(t *testing.T) {
	l := identity.NewLink(acct, who, t0.Add(time.Hour))
	if got := identity.FromLink(l); !reflect.DeepEqual(got, who) {
		t.Fatalf("FromLink(NewLink(id)) = %+v, want %+v", got, who)
	}
	if got := identity.LinkAccount(l); got != acct {
		t.Fatalf("LinkAccount = %+v, want %+v", got, acct)
	}
	if !l.LinkedAt.Equal(t0.Add(time.Hour)) || !l.VerifiedAt.Equal(t0) {
		t.Fatalf("LinkedAt %v, VerifiedAt %v", l.LinkedAt, l.VerifiedAt)
	}
	l.Groups[0], l.AMR[0], l.PersonClaims["github"] = "changed", "changed", nil
	if who.Groups[0] != "sre" || who.AMR[0] != "pwd" || who.PersonClaims["github"] == nil {
		t.Fatal("NewLink shares memory with the identity")
	}
	back := identity.FromLink(l)
	back.Groups[0] = "again"
	if l.Groups[0] != "changed" {
		t.Fatal("FromLink shares memory with the link")
	}
}

// TestNewApprover: a vote's approver names the identity and the chat
// account, with VerifiedAt in UTC.
func TestNewApprover(t *testing.T) {
	in := who
	in.VerifiedAt = t0.In(time.FixedZone("CET", 3600))
	got := identity.NewApprover(acct, in)
	want := storage.Approver{
		Issuer: who.Issuer, Subject: who.Subject, Name: who.Name, Email: who.Email,
		PreferredUsername: who.PreferredUsername, Groups: []string{"sre"}, VerifiedAt: t0,
		Platform: "slack", Workspace: "T1", PlatformUser: "U1",
	}
	if !reflect.DeepEqual(got, want) || got.VerifiedAt.Location() != time.UTC {
		t.Fatalf("NewApprover = %+v, want %+v", got, want)
	}
}

// TestIdentityJSON: the identity's JSON names are part of what callers
// store and show; they do not change.
func TestIdentityJSON(t *testing.T) {
	b, err := json.Marshal(identity.Identity{Issuer: "i", Subject: "s", VerifiedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"issuer":"i","subject":"s","verified_at":"2026-12-01T09:00:00Z","auth_time":"0001-01-01T00:00:00Z"}`
	if string(b) != want {
		t.Fatalf("JSON = %s, want %s", b, want)
	}
}

// TestCoreImports: the identity package is the core's, below oidc,
// approvals and the chat adapters; it imports none of them.
func TestCoreImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		for _, banned := range []string{"/oidc", "/approvals", "/bot", "slack-go", "msbotbuilder"} {
			if strings.Contains(imp, banned) {
				t.Errorf("identity imports %s", imp)
			}
		}
	}
}
