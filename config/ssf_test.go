package config_test

import (
	"strings"
	"testing"
)

// TestSSFKeys: the ssf section from the file and the environment, its
// bearer token file twin, and validation that names every missing key.
func TestSSFKeys(t *testing.T) {
	c := mustLoad(t, base, nil)
	if c.SSF.Configured() {
		t.Errorf("ssf configured by default: %+v", c.SSF)
	}

	token := strings.Repeat("s", 40)
	tokenFile := writeFile(t, "ssf-token", token+"\n")
	c = mustLoad(t, base+`
ssf:
  issuer: https://example.okta.com
  jwks_url: https://example.okta.com/oauth2/v1/keys
  audience: signoff-receiver
  bearer_token_file: `+tokenFile+"\n", nil)
	if err := c.Validate(); err != nil {
		t.Fatalf("a complete ssf section does not validate: %v", err)
	}
	if c.SSF.Issuer != "https://example.okta.com" || c.SSF.JWKSURL != "https://example.okta.com/oauth2/v1/keys" ||
		c.SSF.Audience != "signoff-receiver" || c.SSF.BearerToken.Reveal() != token {
		t.Errorf("from the file: %+v (token %d chars)", c.SSF, len(c.SSF.BearerToken.Reveal()))
	}
	if s := c.Summary(); !strings.Contains(s, "POST /ssf/events from https://example.okta.com") || strings.Contains(s, token) {
		t.Errorf("summary does not describe ssf, or shows the token:\n%s", s)
	}

	c = mustLoad(t, base, map[string]string{
		"SIGNOFF_SSF_ISSUER":       "https://idp.example.com",
		"SIGNOFF_SSF_JWKS_URL":     "https://idp.example.com/keys",
		"SIGNOFF_SSF_AUDIENCE":     "aud-from-env",
		"SIGNOFF_SSF_BEARER_TOKEN": token,
	})
	if c.SSF.Issuer != "https://idp.example.com" || c.SSF.JWKSURL != "https://idp.example.com/keys" || c.SSF.Audience != "aud-from-env" || c.SSF.BearerToken.Reveal() != token {
		t.Errorf("from the environment: %+v", c.SSF)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("ssf from the environment does not validate: %v", err)
	}
	wantEnvKeys(t, "ssf.issuer", "ssf.jwks_url", "ssf.audience", "ssf.bearer_token", "ssf.bearer_token_file")

	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"issuer alone", "ssf: {issuer: https://idp.example.com}", []string{"ssf.audience", "ssf.jwks_url"}},
		{"audience alone", "ssf: {audience: signoff}", []string{"ssf.issuer", "ssf.jwks_url"}},
		{"no audience", "ssf: {issuer: https://idp.example.com, jwks_url: https://idp.example.com/keys}", []string{"ssf.audience"}},
		{"a bearer token alone", "ssf: {bearer_token: " + token + "}", []string{"ssf.audience", "ssf.issuer", "ssf.jwks_url"}},
		{"http key set", "ssf: {issuer: https://idp.example.com, jwks_url: http://idp.example.com/keys, audience: a}", []string{"ssf.jwks_url"}},
		{"relative key set", "ssf: {issuer: https://idp.example.com, jwks_url: /keys, audience: a}", []string{"ssf.jwks_url"}},
		{"short bearer token", "ssf: {issuer: https://idp.example.com, jwks_url: https://idp.example.com/keys, audience: a, bearer_token: short}", []string{"ssf.bearer_token"}},
		{"spaces around the issuer", "ssf: {issuer: \" https://idp.example.com\", jwks_url: https://idp.example.com/keys, audience: a}", []string{"ssf.issuer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, base+tc.yaml+"\n", nil)
			err := c.Validate()
			wantProblemKeys(t, err, tc.want)
			if strings.Contains(err.Error(), token) {
				t.Error("a problem shows the bearer token")
			}
		})
	}

	// A loopback key set over http is fine (tests, a transmitter on the
	// same host).
	c = mustLoad(t, base+"ssf: {issuer: https://idp.example.com, jwks_url: http://127.0.0.1:9/keys, audience: a}\n", nil)
	if err := c.Validate(); err != nil {
		t.Errorf("loopback http key set refused: %v", err)
	}
}
