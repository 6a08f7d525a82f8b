// Package oidc verifies who is talking to signoff: CI bearer tokens from the
// configured requester issuers, and approvers through the account-link flow
// at the company's OpenID Provider. Its Identity type is what the rest of
// signoff receives once a person is verified.
package oidc

import "time"

// Identity is a person as an OpenID Provider vouched for them.
type Identity struct {
	// Issuer is the provider's issuer URL (the iss claim).
	Issuer            string   `json:"issuer"`
	Subject           string   `json:"subject"`
	Email             string   `json:"email,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	// PersonClaims holds the idp.person_claims values of this identity
	// (claim name → value): the names the person may have in the
	// requesters' identity systems, compared for self-approval.
	PersonClaims map[string][]string `json:"person_claims,omitempty"`
	// VerifiedAt is when the provider last confirmed this identity and its
	// groups (a login or a token refresh).
	VerifiedAt time.Time `json:"verified_at"`
	// AuthTime, ACR and AMR describe the last interactive sign-in, when
	// known (step-up checks use them).
	AuthTime time.Time `json:"auth_time,omitempty"`
	ACR      string    `json:"acr,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
}
