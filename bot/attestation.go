package bot

// Approval attestations (docs/attestations.md) at the front door:
//
//	GET /.well-known/openid-configuration   the discovery document: issuer = public_url, jwks_uri (public)
//	GET /.well-known/jwks.json              the published keys, public halves only (public)
//	GET /v1/requests/{id}/attestation       an approved request's attestation (its requester, auditors)
//
// The first two make signoff an OpenID issuer that a cloud's workload
// identity federation, a Kubernetes API server or a deploy system trusts
// with a stock JWT library. The attestation is signed once, by approvals,
// in the transaction that approves the request; this only reads it.

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/storage"
)

// keysMaxAge is how long a relying party may cache the discovery document
// and the key set. A key is published longer than attest.ttl plus this
// before it signs, and after it stopped (docs/attestations.md, "Rotating
// the key").
const keysMaxAge = 5 * 60

func (s *Server) mountAttestations() {
	s.mux.HandleFunc("GET /v1/requests/{id}/attestation", s.authed(s.getAttestation))
	s.mux.HandleFunc("/v1/requests/{id}/attestation", methodNotAllowed("GET, HEAD"))
	s.mux.HandleFunc("GET "+attest.DiscoveryPath, s.publicKeys(func(a *attest.Signer) []byte { return a.Discovery() }))
	s.mux.HandleFunc("GET "+attest.JWKSPath, s.publicKeys(func(a *attest.Signer) []byte { return a.JWKS() }))
}

// publicKeys serves a public document of the attestation signer: cacheable,
// readable from any origin (it holds no secret), 404 when the server signs
// no attestations.
func (s *Server) publicKeys(doc func(*attest.Signer) []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Attestations == nil {
			fail(w, r, http.StatusNotFound, api.CodeNotFound, "this signoff server signs no approval attestations: its operator sets attest.signing_key_file to sign them")
			return
		}
		body := doc(s.opts.Attestations)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(keysMaxAge))
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
}

// getAttestation answers an approved request's attestation to its
// requester or an auditor; to anyone else 404: word for word as for an
// unknown id to those who may not read the request, and saying why to an
// admin who is not an auditor (who reads the request, not its
// attestation: it is a credential relying parties act on). A request
// that is not approved is 409 not_approved. The token is never logged.
func (s *Server) getAttestation(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) {
	id := r.PathValue("id")
	setRequestID(r, id)
	req, err := s.opts.Service.Get(r.Context(), id)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	if !isRequester(tok, req) && !s.isAuditor(tok) {
		if !s.mayRead(tok, req) {
			notFound(w, r, id) // word for word as for an unknown id: ids cannot be probed
			return
		}
		fail(w, r, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no request %q whose attestation this token may read: only its requester (same issuer and subject) and auditors can", truncate(id, 100)))
		return
	}
	if req.State != storage.StateApproved {
		fail(w, r, http.StatusConflict, api.CodeNotApproved, fmt.Sprintf("request %s is %s: only an approved request has an attestation", req.ID, req.State))
		return
	}
	if req.Attestation == "" {
		why := "this server signs no attestations (attest.signing_key_file is not set)"
		if s.opts.Attestations != nil {
			why = "it was approved before this server signed attestations"
		}
		fail(w, r, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("request %s was approved without an attestation: %s", req.ID, why))
		return
	}
	WriteJSON(w, http.StatusOK, api.Attestation{Attestation: req.Attestation})
}
