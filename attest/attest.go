// Package attest makes and checks approval attestations: the JWT signoff
// signs when a request is approved, saying that these people approved
// exactly this action with these parameters (docs/attestations.md).
//
// An attestation is a compact JWS, signed ES256 (an ECDSA P-256 key) or
// RS256 (an RSA key of at least 2048 bits), with the header typ
// "approval+jwt" and the kid of the signing key. Its claims are those of
// Claims: iss (signoff's public_url), sub (the request id), aud (the
// action's attestation.audience), iat, nbf, exp, jti, action, params,
// requester, approvers and decided_at. signoff publishes its keys at
// public_url + JWKSPath and an OpenID discovery document at public_url +
// DiscoveryPath, so any OIDC relying party (a cloud's workload identity
// federation, a Kubernetes API server, a deploy system with a stock JWT
// library) can trust them.
//
// The server side is Signer (approvals signs once, in the transaction that
// approves the request). The receiving side is Verify with a KeySet
// (ParseKeySet for a JWKS document, FetchKeySet for a running server) and
// the Expected claims: audience, and optionally issuer, action and the
// params that must have been approved. The package imports nothing of
// signoff's own, so a receiver written in Go can use it on its own.
package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"
)

// Type is the typ header of every attestation (RFC 8725 §3.11: explicit
// typing, so that no other JWT signed by the same keys passes for one).
const Type = "approval+jwt"

// Defaults.
const (
	// DefaultAudience is an action's attestation.audience when it sets none.
	DefaultAudience = "signoff"
	// DefaultTTL is how long an attestation is valid after the approval
	// (attest.ttl).
	DefaultTTL = 15 * time.Minute
	// MaxTTL is the longest attest.ttl accepted: an attestation stands for
	// a fresh approval, and cloud token services refuse longer-lived
	// tokens.
	MaxTTL = 24 * time.Hour
	// DefaultLeeway is the clock difference between signoff and a
	// receiver that `signoff attest verify` tolerates on exp and nbf.
	DefaultLeeway = time.Minute
)

// Where signoff publishes its keys, relative to its public_url (the
// attestations' issuer).
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks.json"
)

// Claims are what an attestation says. Times are whole seconds (JWT
// NumericDate); JSON encoding writes and reads them as such.
type Claims struct {
	// Issuer (iss) is the signoff server's public_url, without a
	// trailing slash.
	Issuer string
	// Subject (sub) is the approved request's id.
	Subject string
	// Audience (aud) is the action's attestation.audience: who the
	// attestation is for. One string.
	Audience string
	// IssuedAt (iat) and NotBefore (nbf) are the moment of the approval;
	// Expiry (exp) is attest.ttl later.
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	// ID (jti) is unique to this attestation; the request.approved audit
	// record names it.
	ID string
	// Action is the approved action's name.
	Action string
	// Params are the request's parameters, exactly as approved (empty,
	// never absent, when there are none).
	Params map[string]string
	// Requester is who asked for the approval.
	Requester Requester
	// Approvers are the people whose approvals counted, in the order they
	// voted.
	Approvers []Approver
	// DecidedAt (decided_at) is when the request was approved.
	DecidedAt time.Time
}

// Requester is the CI identity that asked: the token's issuer URL and
// subject, and the person behind it when the issuer names one (GitHub's
// actor, GitLab's user_login).
type Requester struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	Person  string `json:"person,omitempty"`
}

// Approver is one person whose approval counted: their identity at the
// company IdP (issuer, subject, email when known) and the chat platform
// they approved on (slack, teams or dev).
type Approver struct {
	Issuer   string `json:"issuer"`
	Subject  string `json:"subject"`
	Email    string `json:"email,omitempty"`
	Platform string `json:"platform"`
}

// wireClaims is Claims as the token carries them.
type wireClaims struct {
	Issuer    string            `json:"iss"`
	Subject   string            `json:"sub"`
	Audience  string            `json:"aud"`
	IssuedAt  int64             `json:"iat"`
	NotBefore int64             `json:"nbf"`
	Expiry    int64             `json:"exp"`
	ID        string            `json:"jti"`
	Action    string            `json:"action"`
	Params    map[string]string `json:"params"`
	Requester Requester         `json:"requester"`
	Approvers []Approver        `json:"approvers"`
	DecidedAt int64             `json:"decided_at"`
}

// MarshalJSON writes the claims as an attestation carries them: the JWT
// claim names, times as NumericDate (seconds), params and approvers
// always present.
func (c Claims) MarshalJSON() ([]byte, error) {
	w := wireClaims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
		IssuedAt: unix(c.IssuedAt), NotBefore: unix(c.NotBefore), Expiry: unix(c.Expiry),
		ID: c.ID, Action: c.Action, Params: c.Params, Requester: c.Requester, Approvers: c.Approvers,
		DecidedAt: unix(c.DecidedAt),
	}
	if w.Params == nil {
		w.Params = map[string]string{}
	}
	if w.Approvers == nil {
		w.Approvers = []Approver{}
	}
	return json.Marshal(w)
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// readClaims is what Verify decodes: every claim as a pointer or raw
// value, so that a missing claim is told apart from an empty one, and aud
// read as RFC 7519 allows it (a string, or an array of strings).
type readClaims struct {
	Issuer    *string            `json:"iss"`
	Subject   *string            `json:"sub"`
	Audience  json.RawMessage    `json:"aud"`
	IssuedAt  *json.Number       `json:"iat"`
	NotBefore *json.Number       `json:"nbf"`
	Expiry    *json.Number       `json:"exp"`
	ID        *string            `json:"jti"`
	Action    *string            `json:"action"`
	Params    *map[string]string `json:"params"`
	Requester *Requester         `json:"requester"`
	Approvers *[]Approver        `json:"approvers"`
	DecidedAt *json.Number       `json:"decided_at"`
}

// UnmarshalJSON reads claims as an attestation carries them. It refuses a
// document that lacks any of the claims signoff always writes, or holds
// one of the wrong type. An aud holding an array takes its only element
// (an array of several is refused: an attestation is for one audience).
func (c *Claims) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var r readClaims
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("the claims are not a JSON object of the expected shape: %w", err)
	}
	var missing []string
	need := func(name string, present bool) {
		if !present {
			missing = append(missing, name)
		}
	}
	need("iss", r.Issuer != nil)
	need("sub", r.Subject != nil)
	need("aud", len(r.Audience) > 0 && string(r.Audience) != "null")
	need("iat", r.IssuedAt != nil)
	need("nbf", r.NotBefore != nil)
	need("exp", r.Expiry != nil)
	need("jti", r.ID != nil)
	need("action", r.Action != nil)
	need("params", r.Params != nil)
	need("requester", r.Requester != nil)
	need("approvers", r.Approvers != nil)
	need("decided_at", r.DecidedAt != nil)
	if len(missing) > 0 {
		return fmt.Errorf("the claims lack %v", missing)
	}
	aud, err := readAudience(r.Audience)
	if err != nil {
		return err
	}
	out := Claims{
		Issuer: *r.Issuer, Subject: *r.Subject, Audience: aud, ID: *r.ID, Action: *r.Action,
		Params: maps.Clone(*r.Params), Requester: *r.Requester, Approvers: *r.Approvers,
	}
	if out.Params == nil {
		out.Params = map[string]string{}
	}
	if out.Approvers == nil {
		out.Approvers = []Approver{}
	}
	for _, t := range []struct {
		name string
		n    *json.Number
		into *time.Time
	}{
		{"iat", r.IssuedAt, &out.IssuedAt},
		{"nbf", r.NotBefore, &out.NotBefore},
		{"exp", r.Expiry, &out.Expiry},
		{"decided_at", r.DecidedAt, &out.DecidedAt},
	} {
		v, err := numericDate(*t.n)
		if err != nil {
			return fmt.Errorf("claim %s: %w", t.name, err)
		}
		*t.into = v
	}
	*c = out
	return nil
}

func readAudience(raw json.RawMessage) (string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return one, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", errors.New("claim aud is neither a string nor an array of strings")
	}
	if len(list) != 1 {
		return "", fmt.Errorf("claim aud names %d audiences; an attestation is for exactly one", len(list))
	}
	return list[0], nil
}

// numericDate reads a JWT NumericDate: seconds since the epoch, possibly
// with a fraction (which is dropped).
func numericDate(n json.Number) (time.Time, error) {
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0).UTC(), nil
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < -(1<<62) || f > 1<<62 {
		return time.Time{}, fmt.Errorf("%q is not a NumericDate (seconds since 1970)", n.String())
	}
	return time.Unix(int64(f), 0).UTC(), nil
}
