// Package devissuer is the OpenID issuer built into signoff's dev mode
// (`signoff serve --dev`): it serves a discovery document and a key set,
// and mints CI-style tokens (`signoff dev token`) so a newcomer can request
// approvals without GitHub, GitLab or a company IdP. With EnableLogin it
// is also a minimal OpenID Provider for the authorization-code flow with
// PKCE, whose sign-in page lists the dev approvers, so approvers' chat
// accounts can be linked without a company IdP too.
//
// Tokens it mints are trusted only in dev mode: the caller adds
// [Issuer.TrustedIssuer] to the requester issuers only when --dev is
// given, and dev mode only listens on a loopback address. New refuses an
// issuer URL that is not on a loopback host, so a dev issuer cannot be
// reached from another machine.
package devissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/keyfile"
	"github.com/signoff-dev/signoff/oidc"
)

// JWKSPath and DiscoveryPath are where Handler serves the key set and the
// discovery document, relative to the issuer URL's path.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/jwks"
)

// reservedClaims are set by Mint and may not come from extra.
var reservedClaims = []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti"}

// Issuer is a dev-mode OpenID issuer with one signing key. It is safe for
// concurrent use.
type Issuer struct {
	issuer   string
	basePath string // the issuer URL's path without a trailing slash
	alg      jose.SignatureAlgorithm
	kid      string
	signer   jose.Signer
	jwks     []byte

	mu       sync.RWMutex
	metadata []byte
	login    *login // nil until EnableLogin
}

// New returns the dev issuer whose iss is issuerURL (e.g.
// "http://127.0.0.1:8080/dev/oidc"; an http or https URL on a loopback
// host). It signs with the private key in keyFile (PEM: PKCS#8, or SEC 1 /
// PKCS#1; ECDSA P-256 → ES256, RSA ≥ 2048 bits → RS256, Ed25519 → EdDSA).
// When keyFile does not exist, New creates an ECDSA P-256 key there with
// mode 0600 (and its directory with 0700), so tokens survive restarts. An
// existing key file that other users may read is refused.
func New(issuerURL string, keyFile string) (*Issuer, error) {
	u, err := url.Parse(issuerURL)
	if err != nil {
		return nil, fmt.Errorf("devissuer: issuer URL %q is not a URL: %w", issuerURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("devissuer: issuer URL %q must be an absolute http(s) URL without query, fragment or user info", issuerURL)
	}
	if !hostlist.IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("devissuer: issuer URL %q is not on a loopback address; the dev issuer only runs locally (use 127.0.0.1 or localhost)", issuerURL)
	}
	if keyFile == "" {
		return nil, errors.New("devissuer: no key file given")
	}
	key, err := loadOrCreateKey(keyFile)
	if err != nil {
		return nil, err
	}
	alg, err := algorithmFor(key)
	if err != nil {
		return nil, fmt.Errorf("devissuer: key file %s: %w", keyFile, err)
	}
	pub := jose.JSONWebKey{Key: key.Public(), Algorithm: string(alg), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devissuer: computing the key id: %w", err)
	}
	pub.KeyID = hex.EncodeToString(thumb[:8])
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("devissuer: creating the signer: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("devissuer: encoding the key set: %w", err)
	}
	iss := &Issuer{
		issuer:   issuerURL,
		basePath: strings.TrimSuffix(u.Path, "/"),
		alg:      alg,
		kid:      pub.KeyID,
		signer:   signer,
		jwks:     jwks,
	}
	if iss.metadata, err = iss.discovery(false); err != nil {
		return nil, err
	}
	return iss, nil
}

// discovery encodes the discovery document; withLogin adds the
// authorization-code flow's endpoints and capabilities.
func (i *Issuer) discovery(withLogin bool) ([]byte, error) {
	base := strings.TrimSuffix(i.issuer, "/")
	m := map[string]any{
		"issuer":                                i.issuer,
		"jwks_uri":                              base + JWKSPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(i.alg)},
		"claims_supported":                      []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti"},
	}
	if withLogin {
		m["authorization_endpoint"] = base + AuthorizePath
		m["token_endpoint"] = base + TokenPath
		m["response_types_supported"] = []string{"code"}
		m["response_modes_supported"] = []string{"query"}
		m["grant_types_supported"] = []string{"authorization_code"}
		m["code_challenge_methods_supported"] = []string{"S256"}
		m["token_endpoint_auth_methods_supported"] = []string{"none"}
		m["scopes_supported"] = []string{"openid", "email", "profile", "groups"}
		m["prompt_values_supported"] = []string{"none", "login"}
		m["authorization_response_iss_parameter_supported"] = true
		m["claims_supported"] = []string{"iss", "sub", "aud", "iat", "exp", "auth_time", "nonce", "amr", "acr",
			"email", "email_verified", "name", "preferred_username", "groups"}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("devissuer: encoding the discovery document: %w", err)
	}
	return b, nil
}

// URL returns the issuer URL (the iss of minted tokens).
func (i *Issuer) URL() string { return i.issuer }

// KeyID returns the kid of the signing key (derived from the public key,
// so it is stable across restarts with the same key file).
func (i *Issuer) KeyID() string { return i.kid }

// TrustedIssuer returns the requester issuer entry that trusts this
// issuer's tokens for audience, with sub as the person claim. Add it to the
// verifier's list only in dev mode.
func (i *Issuer) TrustedIssuer(name, audience string) oidc.TrustedIssuer {
	return oidc.TrustedIssuer{Name: name, Issuer: i.issuer, Audience: audience, PersonClaim: "sub"}
}

// Handler serves GET (and HEAD) on the discovery document,
// <issuer path>/.well-known/openid-configuration, and the key set,
// <issuer path>/jwks; once EnableLogin was called, also GET and POST on
// <issuer path>/authorize and POST on <issuer path>/token. Every other
// path is 404. It matches full request paths, so mount it without
// stripping a prefix. For the issuer http://127.0.0.1:8080/dev/oidc:
//
//	mux.Handle("/dev/oidc/", iss.Handler())
//
// (for an issuer URL without a path, mount the paths themselves:
// mux.Handle("/.well-known/openid-configuration", h),
// mux.Handle("/jwks", h), and with login mux.Handle("/authorize", h) and
// mux.Handle("/token", h)).
func (i *Issuer) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case i.basePath + AuthorizePath:
			l := i.loginState()
			switch {
			case l == nil:
				http.NotFound(w, r)
			case r.Method == http.MethodGet:
				i.authorize(l, w, r)
			case r.Method == http.MethodPost:
				i.signIn(l, w, r)
			default:
				w.Header().Set("Allow", "GET, POST")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			}
			return
		case i.basePath + TokenPath:
			l := i.loginState()
			switch {
			case l == nil:
				http.NotFound(w, r)
			case r.Method == http.MethodPost:
				i.token(l, w, r)
			default:
				w.Header().Set("Allow", "POST")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			}
			return
		}
		var body []byte
		switch r.URL.Path {
		case i.basePath + DiscoveryPath:
			i.mu.RLock()
			body = i.metadata
			i.mu.RUnlock()
		case i.basePath + JWKSPath:
			body = i.jwks
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}

// Mint signs a token for sub and audience, valid from now for ttl, with
// the claims iss, sub, aud, iat, nbf, exp and a random jti, plus extra
// (which may not set any of those). Such tokens are accepted only by a
// verifier that trusts this issuer, which signoff sets up in dev mode only.
func (i *Issuer) Mint(sub string, audience string, extra map[string]any, ttl time.Duration) (string, error) {
	if sub == "" {
		return "", errors.New("devissuer: mint: empty subject")
	}
	if audience == "" {
		return "", errors.New("devissuer: mint: empty audience")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("devissuer: mint: ttl %s must be positive", ttl)
	}
	claims := make(map[string]any, len(extra)+len(reservedClaims))
	for k, v := range extra {
		for _, r := range reservedClaims {
			if k == r {
				return "", fmt.Errorf("devissuer: mint: claim %q is set by Mint and cannot be given as an extra claim", k)
			}
		}
		claims[k] = v
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("devissuer: mint: %w", err)
	}
	now := time.Now()
	claims["iss"] = i.issuer
	claims["sub"] = sub
	claims["aud"] = audience
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	claims["jti"] = hex.EncodeToString(jti[:])
	tok, err := i.sign(claims)
	if err != nil {
		return "", fmt.Errorf("devissuer: mint: %w", err)
	}
	return tok, nil
}

// sign returns claims as a signed compact JWT.
func (i *Issuer) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("serializing: %w", err)
	}
	return tok, nil
}

// loadOrCreateKey reads the PEM private key at path, or creates an ECDSA
// P-256 key there when the file does not exist.
func loadOrCreateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("devissuer: reading key file: %w", err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("devissuer: key file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("devissuer: key file %s has mode %04o, so other users can read the dev signing key; run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("devissuer: key file %s: %w (delete it to have a new key created; tokens minted with the old one then stop verifying)", path, err)
	}
	return key, nil
}

func createKey(path string) (crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devissuer: generating key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devissuer: encoding key: %w", err)
	}
	err = keyfile.CreateNew(path, func(w io.Writer) error {
		return pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	})
	// If another process created the file meanwhile, use its key rather
	// than overwrite it.
	if errors.Is(err, fs.ErrExist) {
		return loadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("devissuer: %w", err)
	}
	return key, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported key type %T", key)
	}
	return signer, nil
}

func algorithmFor(key crypto.Signer) (jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on curve %s; only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return jose.ES256, nil
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits; at least 2048 are required", k.N.BitLen())
		}
		return jose.RS256, nil
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("unsupported key type %T (use ECDSA P-256, RSA or Ed25519)", key)
}
