package linkflow_test

import (
	"slices"
	"testing"

	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// TestReadUnverifiedIdentity: an approver's claims are read as the link
// flow reads a verified ID token: groups from the configured claim (a
// single string too), person claims trimmed and flattened, sub required.
func TestReadUnverifiedIdentity(t *testing.T) {
	id, err := linkflow.ReadUnverifiedIdentity([]byte(`{"iss":"https://idp.example","sub":"00u1","email":"dana@example.com",
		"preferred_username":"dana","roles":"sre","groups":["ignored"],"gh":[" octocat ",7,{}],"auth_time":1700000000}`),
		"roles", []string{"gh", "preferred_username"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if id.Issuer != "https://idp.example" || id.Subject != "00u1" || id.Email != "dana@example.com" || id.PreferredUsername != "dana" ||
		!slices.Equal(id.Groups, []string{"sre"}) || !slices.Equal(id.PersonClaims["gh"], []string{"octocat", "7"}) || !id.VerifiedAt.IsZero() {
		t.Errorf("identity %+v", id)
	}
	p := id.Person()
	if !p.EmailUnverified {
		t.Error("an email without email_verified is taken as vouched for in the preview")
	}
	if !slices.Equal(p.Handles, []string{"octocat", "7", "dana"}) || !slices.Equal(p.Groups, []string{"sre"}) {
		t.Errorf("person %+v", p)
	}
	// Defaults: groups from "groups", person claims preferred_username.
	id, err = linkflow.ReadUnverifiedIdentity([]byte(`{"sub":"x","groups":["dev"],"preferred_username":"erin"}`), "", nil, false)
	if err != nil || !slices.Equal(id.Groups, []string{"dev"}) || !slices.Equal(id.PersonClaims["preferred_username"], []string{"erin"}) {
		t.Errorf("defaults: %+v, %v", id, err)
	}
	for _, bad := range []string{`{"email":"x@example.com"}`, `[1]`, `{"sub":"x","auth_time":"yesterday"}`} {
		if _, err := linkflow.ReadUnverifiedIdentity([]byte(bad), "", nil, false); err == nil {
			t.Errorf("%s was read", bad)
		}
	}
}

// TestReadUnverifiedIdentityEmailVouching: the preview marks the email as
// the link flow would: vouched for with email_verified true or xms_edov
// true, or with idp.email_verified: assumed when the IdP says nothing.
func TestReadUnverifiedIdentityEmailVouching(t *testing.T) {
	for _, tc := range []struct {
		claims     string
		assume     bool
		unverified bool
	}{
		{`{"sub":"x","email":"a@example.com","email_verified":true}`, false, false},
		{`{"sub":"x","email":"a@example.com","xms_edov":true}`, false, false},
		{`{"sub":"x","email":"a@example.com"}`, false, true},
		{`{"sub":"x","email":"a@example.com"}`, true, false},
		{`{"sub":"x","email":"a@example.com","email_verified":false}`, true, true},
		{`{"sub":"x"}`, false, false},
	} {
		id, err := linkflow.ReadUnverifiedIdentity([]byte(tc.claims), "", nil, tc.assume)
		if err != nil || id.EmailUnverified != tc.unverified {
			t.Errorf("%s (assumed %v): email unverified %v, %v; want %v", tc.claims, tc.assume, id.EmailUnverified, err, tc.unverified)
		}
	}
}
