// Package oidc verifies tokens: CI bearer tokens from the configured
// requester issuers (RequesterVerifier), Security Event Tokens (SETVerifier),
// and the command line's own sign-in (CLIClient). Approvers are verified
// through the account-link flow in oidc/linkflow, which hands on the core's
// identity.Identity.
package oidc

import "github.com/signoff-dev/signoff/identity"

// Identity is identity.Identity, the one identity type of signoff's core.
// The alias is kept for callers that name it through this package; new
// code should name identity.Identity.
type Identity = identity.Identity
