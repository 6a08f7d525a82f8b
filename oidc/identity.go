// Package oidc verifies who is talking to signoff: CI bearer tokens from the
// configured requester issuers, and approvers through the account-link flow
// at the company's OpenID Provider. What it verifies it hands on as the
// core's identity.Identity.
package oidc

import "github.com/signoff-dev/signoff/identity"

// Identity is identity.Identity, the one identity type of signoff's core.
// The alias is kept for callers that name it through this package; new
// code should name identity.Identity.
type Identity = identity.Identity
