package config

import "strings"

// minSSFBearerToken is the shortest ssf.bearer_token accepted: it is the
// only thing between the internet and the SET parser when it is set, so it
// must not be guessable.
const minSSFBearerToken = 32

// validateSSF checks the ssf section: issuer, jwks_url and audience come
// together, each named when it is missing.
func (c *Config) validateSSF(ps *problems) {
	s := c.SSF
	if !s.Configured() {
		return
	}
	const together = "required when the ssf section is used (ssf.issuer, ssf.jwks_url and ssf.audience go together)"
	switch {
	case s.Issuer == "":
		ps.add("ssf.issuer", "%s: the transmitter's issuer, exactly as its SETs carry it in iss (Okta: https://{yourOktaDomain})", together)
	case s.Issuer != strings.TrimSpace(s.Issuer):
		ps.add("ssf.issuer", "%q has leading or trailing spaces; SETs must carry it exactly", s.Issuer)
	}
	if s.JWKSURL == "" {
		ps.add("ssf.jwks_url", "%s: the transmitter's signing keys, the jwks_uri of its /.well-known/ssf-configuration", together)
	} else {
		checkURL(ps, "ssf.jwks_url", s.JWKSURL, urlRule{httpsUnlessLoopback: true, showValue: true})
	}
	if s.Audience == "" {
		ps.add("ssf.audience", "%s: the aud the transmitter puts in SETs for signoff (its stream configuration shows it)", together)
	}
	if s.BearerToken != "" && len(s.BearerToken) < minSSFBearerToken {
		ps.add("ssf.bearer_token", "is too short (%d characters); use at least %d random characters (e.g. openssl rand -hex 32)", len(s.BearerToken), minSSFBearerToken)
	}
}
