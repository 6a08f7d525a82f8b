package bot

// People at the API: `signoff login`.
//
//	GET /v1/login-config   public: what `signoff login --server URL` needs to sign in (api.LoginConfig)
//
// A person signs in at the company IdP with the command line's public
// client (idp.cli_client_id, authorization code + PKCE, loopback redirect)
// and presents the ID token as a bearer token. It is verified like any
// token (the verifier holds the IdP as a TrustedIssuer with Login set, so
// signature, algorithm, iss, aud = the CLI client and exp are checked) and
// carries the groups of idp.groups_claim. Such a login token
// (RequesterToken.Login) works on admin and auditor endpoints, which ask
// only whether the token's groups make it an auditor (or admin), whatever
// issued it. It never acts as a CI requester: it cannot create a request
// (403, refuseLoginToken) nor count as the requester of one (isRequester).

import (
	"net/http"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/oidc"
)

func (s *Server) mountLogin() {
	s.mux.HandleFunc("GET "+api.LoginConfigPath, s.loginConfig)
	s.mux.HandleFunc(api.LoginConfigPath, methodNotAllowed("GET, HEAD"))
}

func (s *Server) loginConfig(w http.ResponseWriter, r *http.Request) {
	if s.opts.Login == nil {
		fail(w, r, http.StatusNotFound, api.CodeNotFound, "this signoff server does not offer signoff login: its operator has not set idp.cli_client_id. Pass a token from a trusted issuer with --token or $SIGNOFF_TOKEN instead")
		return
	}
	WriteJSON(w, http.StatusOK, s.opts.Login)
}

// loginTokenMessage is the refusal of a login token where only CI
// requesters may act.
const loginTokenMessage = "this is a signoff login token (an ID token from the company IdP for idp.cli_client_id): login tokens are for admin and auditor endpoints; requests are created by CI jobs with their own OIDC token"

// refuseLoginToken answers 403 when tok came from signoff login, and
// reports whether it did.
func refuseLoginToken(w http.ResponseWriter, r *http.Request, tok *oidc.RequesterToken) bool {
	if !tok.Login {
		return false
	}
	fail(w, r, http.StatusForbidden, api.CodeForbidden, loginTokenMessage)
	return true
}
