package config_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/attest"
)

func attestKeyFile(t *testing.T, useRSA bool) string {
	t.Helper()
	k, err := attest.GenerateKey(useRSA)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := attest.WritePrivateKeyPEM(&b, k); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "attest.key", b.String())
}

// TestAttestKeys: the attest section and an action's attestation.audience,
// their defaults, environment overrides, and the policy they reach.
func TestAttestKeys(t *testing.T) {
	c := mustLoad(t, base, nil)
	if c.Attest.TTL != 15*time.Minute || c.Attest.SigningKey.IsSet() || c.Actions["deploy-prod"].Attestation.Audience != "signoff" {
		t.Errorf("defaults: %+v, audience %q", c.Attest, c.Actions["deploy-prod"].Attestation.Audience)
	}
	keyFile := attestKeyFile(t, false)
	c = mustLoad(t, "public_url: https://signoff.example.com\n"+base+`    attestation: {audience: deploy.example.com}
attest:
  signing_key_file: `+keyFile+`
  previous_key_files: [/run/secrets/old.pub]
  ttl: 10m
`, nil)
	if err := c.Validate(); err != nil {
		t.Fatalf("a complete attest section does not validate: %v", err)
	}
	if !c.Attest.SigningKey.IsSet() || c.Attest.TTL != 10*time.Minute || !slices.Equal(c.Attest.PreviousKeyFiles, []string{"/run/secrets/old.pub"}) {
		t.Errorf("from the file: %+v", c.Attest)
	}
	if strings.Contains(c.Attest.SigningKey.String(), "PRIVATE") {
		t.Error("the signing key prints in clear")
	}
	if s := c.Summary(); !strings.Contains(s, "ES256, key from file "+keyFile) || strings.Contains(s, "PRIVATE") ||
		!strings.Contains(s, "valid 10m, issuer https://signoff.example.com, 1 previous key(s) published") {
		t.Errorf("summary does not describe attest, or shows the key:\n%s", s)
	}
	pol, err := c.Policy()
	if err != nil {
		t.Fatal(err)
	}
	if got := pol.Actions["deploy-prod"].AttestationAudience; got != "deploy.example.com" {
		t.Errorf("policy audience %q", got)
	}

	c = mustLoad(t, "public_url: https://signoff.example.com\n"+base, map[string]string{
		"SIGNOFF_ATTEST_SIGNING_KEY_FILE":   keyFile,
		"SIGNOFF_ATTEST_TTL":                "5m",
		"SIGNOFF_ATTEST_PREVIOUS_KEY_FILES": "/a.pub,/b.pub",
	})
	if !c.Attest.SigningKey.IsSet() || c.Attest.TTL != 5*time.Minute || !slices.Equal(c.Attest.PreviousKeyFiles, []string{"/a.pub", "/b.pub"}) {
		t.Errorf("from the environment: %+v", c.Attest)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("attest from the environment does not validate: %v", err)
	}
	wantEnvKeys(t, "attest.signing_key", "attest.signing_key_file", "attest.previous_key_files", "attest.ttl")
}

// Every problem names its key; the key itself never shows.
func TestAttestProblems(t *testing.T) {
	good := attestKeyFile(t, false)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	p384File := writeFile(t, "p384.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	const url = "public_url: https://signoff.example.com\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string
		frag       string
	}{
		{"a P-384 key", url + base + "attest: {signing_key_file: " + p384File + "}", []string{"attest.signing_key"}, "P-384"},
		{"not a key", url + base + "attest: {signing_key: hello}", []string{"attest.signing_key"}, "PEM"},
		{"no public_url", base + "attest: {signing_key_file: " + good + "}", []string{"public_url"}, "issuer"},
		{"ttl too short", base + "attest: {ttl: 30s}", []string{"attest.ttl"}, "at least 1m"},
		{"ttl too long", base + "attest: {ttl: 48h}", []string{"attest.ttl"}, "maximum"},
		{"previous keys without a signing key", base + "attest: {previous_key_files: [/old.pub]}", []string{"attest.previous_key_files"}, "signing_key_file"},
		{"the signing key listed as previous", url + base + "attest: {signing_key_file: " + good + ", previous_key_files: [" + good + "]}", []string{"attest.previous_key_files[0]"}, "itself"},
		{"an empty previous key", url + base + "attest: {signing_key_file: " + good + ", previous_key_files: [\"\"]}", []string{"attest.previous_key_files[0]"}, "empty"},
		{"an empty audience", base + "    attestation: {audience: \"\"}", []string{"actions.deploy-prod.attestation.audience"}, "empty"},
		{"an audience with spaces", base + "    attestation: {audience: \" deploy \"}", []string{"actions.deploy-prod.attestation.audience"}, "spaces"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.yaml+"\n", nil)
			err := c.Validate()
			if err == nil {
				t.Fatalf("validated; want problems with %v", tc.want)
			}
			wantProblemKeys(t, err, tc.want, tc.frag)
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Error("a problem shows the key")
			}
		})
	}
	// An RSA key is fine too (RS256).
	c := mustLoad(t, url+base+"attest: {signing_key_file: "+attestKeyFile(t, true)+"}\n", nil)
	if err := c.Validate(); err != nil {
		t.Errorf("an RSA key: %v", err)
	}
}
