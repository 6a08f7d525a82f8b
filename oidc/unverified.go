package oidc

import "github.com/signoff-dev/signoff/oidc/internal/idtoken"

// ReadUnverified reads a JSON claims set that was NOT verified (no
// signature, no expiry, no issuer contacted) the way Verify reads the same
// claims once their token is verified: routed to a trusted issuer by iss
// (and aud, when several entries share it), checked for that entry's
// audience, a sub and its person claim, and mapped into a RequesterToken
// whose Expiry is left zero.
//
// It exists for previews (`signoff policy explain --claims`): what it
// returns MUST NOT authorize anything. A refusal is a *TokenError with
// the reason Verify would give for a token carrying these claims.
func (v *RequesterVerifier) ReadUnverified(claims []byte) (*RequesterToken, error) {
	m, err := idtoken.Decode(claims)
	if err != nil {
		return nil, tokenErrorf(ReasonMalformed, err, "the claims are not a JSON object: %s", idtoken.CauseText(err))
	}
	p := &peeked{}
	if p.iss, _ = m["iss"].(string); p.iss == "" {
		return nil, tokenErrorf(ReasonMalformed, nil, "the claims have no iss (issuer) claim, or it is not a string: add the issuer URL of the requesters entry they stand for")
	}
	if p.aud, err = audienceOf(m["aud"]); err != nil {
		return nil, tokenErrorf(ReasonMalformed, err, "the aud claim is neither a string nor a list of strings")
	}
	entry, terr := v.pick(p)
	if terr != nil {
		return nil, terr
	}
	if terr := checkAudience(entry, m); terr != nil {
		return nil, terr
	}
	tok, terr := tokenOf(entry, m)
	if terr != nil {
		return nil, terr
	}
	return tok, nil
}
