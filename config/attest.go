package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/attest"
)

// Defaults of the attestation keys.
const (
	// DefaultAttestTTL is attest.ttl: how long an approval attestation is
	// valid after the approval.
	DefaultAttestTTL = attest.DefaultTTL
	// DefaultAttestationAudience is an action's attestation.audience.
	DefaultAttestationAudience = attest.DefaultAudience
	// minAttestTTL is the shortest attest.ttl accepted: shorter, a
	// receiver whose clock is a little off refuses a fresh attestation.
	minAttestTTL = time.Minute
)

// AttestConfig configures approval attestations (docs/attestations.md):
// the JWT signed when a request is approved, which receivers verify
// against the keys signoff publishes at public_url/.well-known/jwks.json.
// Without a signing key no attestations are signed (dev mode makes one).
type AttestConfig struct {
	// SigningKey is the PEM private key that signs (`signoff attest
	// keygen`): ECDSA P-256 (ES256) or RSA of at least 2048 bits (RS256).
	SigningKey Secret `mapstructure:"signing_key"`
	// SigningKeyFile is SigningKey's file twin.
	SigningKeyFile string `mapstructure:"signing_key_file"`
	// PreviousKeyFiles are keys published beside the signing key but never
	// used to sign: a retired key, kept listed at least attest.ttl after it
	// stopped signing, or a next key published ahead of its use. Each file
	// holds a PEM public key or private key (only its public half is
	// published). Read at start; serve names the entry on a problem.
	PreviousKeyFiles []string `mapstructure:"previous_key_files"`
	// TTL is how long an attestation is valid; DefaultAttestTTL.
	TTL time.Duration `mapstructure:"ttl"`
}

// AttestationConfig is an action's attestation section.
type AttestationConfig struct {
	// Audience is the aud of the action's attestations: who they are for
	// (a deploy system, a cloud's workload identity pool);
	// DefaultAttestationAudience when not set.
	Audience string `mapstructure:"audience"`
}

// validateAttest checks the attest section: a signing key of a type
// attestations are signed with, public_url to name as their issuer, a ttl
// in range, previous keys only beside a signing key.
func (c *Config) validateAttest(ps *problems) {
	a := c.Attest
	switch {
	case a.TTL < minAttestTTL:
		ps.add("attest.ttl", "must be at least %s, got %s (leave it out for the default, %s)", FormatDuration(minAttestTTL), FormatDuration(a.TTL), FormatDuration(DefaultAttestTTL))
	case a.TTL > attest.MaxTTL:
		ps.add("attest.ttl", "%s is more than the maximum, %s: an attestation stands for a fresh approval", FormatDuration(a.TTL), FormatDuration(attest.MaxTTL))
	}
	checkNonEmpty(ps, "attest.previous_key_files", a.PreviousKeyFiles)
	if !a.SigningKey.IsSet() {
		if len(a.PreviousKeyFiles) > 0 {
			ps.add("attest.previous_key_files", "needs attest.signing_key_file: previous keys are published beside the key that signs")
		}
		return
	}
	if _, err := attest.ParsePrivateKeyPEM([]byte(a.SigningKey.Reveal())); err != nil {
		ps.add("attest.signing_key", "%v", err)
	}
	if c.PublicURL == "" {
		ps.add("public_url", "required when attest.signing_key is set: attestations name public_url as their issuer, and receivers fetch its keys from public_url%s", attest.JWKSPath)
	}
	for i, f := range a.PreviousKeyFiles {
		if f != "" && f == a.SigningKeyFile {
			ps.add(fmt.Sprintf("attest.previous_key_files[%d]", i), "is attest.signing_key_file itself; list only keys that do not sign")
		}
	}
}

// validateAttestation checks an action's attestation section.
func validateAttestation(ps *problems, key string, a AttestationConfig) {
	switch {
	case strings.TrimSpace(a.Audience) == "":
		ps.add(key+".audience", "is empty: name who the attestations are for (leave it out for the default, %q)", DefaultAttestationAudience)
	case a.Audience != strings.TrimSpace(a.Audience):
		ps.add(key+".audience", "%q has leading or trailing spaces; receivers compare it exactly", a.Audience)
	}
}

// attestSummary is the attest line of `signoff config check`.
func (w *summaryWriter) attestSummary(c *Config) {
	a := c.Attest
	if !a.SigningKey.IsSet() {
		w.line("attest", "approvals are not attested (set attest.signing_key_file to sign one attestation per approval; dev mode makes a key)")
		return
	}
	alg := "an unusable key"
	if k, err := attest.ParsePrivateKeyPEM([]byte(a.SigningKey.Reveal())); err == nil {
		alg, _ = attest.Algorithm(k.Public())
	}
	w.line("attest", "%s, key %s, valid %s, issuer %s, %d previous key(s) published", alg, secretSource(a.SigningKey, a.SigningKeyFile),
		FormatDuration(a.TTL), orNotSet(strings.TrimSuffix(c.PublicURL, "/")), len(a.PreviousKeyFiles))
}
