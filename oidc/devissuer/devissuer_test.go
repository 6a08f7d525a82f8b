package devissuer_test

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testkeys"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/oidc/devissuer"
)

// devServer is a loopback listener with the dev issuer mounted at
// /dev/oidc, the way `signoff serve --dev` mounts it.
type devServer struct {
	srv    *httptest.Server
	issuer *devissuer.Issuer
}

func startDev(t *testing.T, keyFile string) *devServer {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss, err := devissuer.New(srv.URL+"/dev/oidc", keyFile)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux.Handle("/dev/oidc/", iss.Handler())
	return &devServer{srv: srv, issuer: iss}
}

func (d *devServer) verifier(t *testing.T) *oidc.RequesterVerifier {
	t.Helper()
	v, err := oidc.NewRequesterVerifier(
		[]oidc.TrustedIssuer{d.issuer.TrustedIssuer("dev", "signoff")},
		oidc.VerifierOptions{HTTPClient: d.srv.Client()},
	)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMintedTokenVerifies(t *testing.T) {
	d := startDev(t, filepath.Join(t.TempDir(), "dev-issuer.pem"))
	raw, err := d.issuer.Mint("dev-user", "signoff", map[string]any{"repository": "acme/api", "ref": "refs/heads/main", "run_id": 42}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := d.verifier(t).Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if tok.IssuerName != "dev" || tok.Issuer != d.srv.URL+"/dev/oidc" || tok.Subject != "dev-user" || tok.Person != "dev-user" {
		t.Errorf("token = %+v", tok)
	}
	if tok.Claims["repository"] != "acme/api" || tok.Claims["ref"] != "refs/heads/main" || tok.Claims["run_id"] != "42" {
		t.Errorf("claims = %v", tok.Claims)
	}
	if d := time.Until(tok.Expiry); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("expiry in %s, want about 10m", d)
	}

	// The claims Mint sets itself.
	var c map[string]any
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti"} {
		if _, ok := c[k]; !ok {
			t.Errorf("minted token has no %s", k)
		}
	}
	if c["exp"].(float64)-c["iat"].(float64) != 600 {
		t.Errorf("exp - iat = %v, want 600", c["exp"].(float64)-c["iat"].(float64))
	}
}

func TestDevTokensAreOnlyTrustedWhereTheDevIssuerIs(t *testing.T) {
	d := startDev(t, filepath.Join(t.TempDir(), "dev-issuer.pem"))
	raw, err := d.issuer.Mint("dev-user", "signoff", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// A verifier configured without the dev issuer (signoff outside dev
	// mode) refuses its tokens.
	v, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{
		{Name: "github", Issuer: "https://token.actions.githubusercontent.com", Audience: "signoff", PersonClaim: "actor"},
	}, oidc.VerifierOptions{HTTPClient: d.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), raw)
	var te *oidc.TokenError
	if !errors.As(err, &te) || te.Reason != oidc.ReasonUnknownIssuer {
		t.Fatalf("err = %v, want unknown_issuer", err)
	}
	// And a token for another audience is refused by the dev verifier.
	raw, err = d.issuer.Mint("dev-user", "someone-else", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.verifier(t).Verify(context.Background(), raw)
	if !errors.As(err, &te) || te.Reason != oidc.ReasonWrongAudience {
		t.Fatalf("err = %v, want wrong_audience", err)
	}
}

func TestHandlerServesDiscoveryAndKeys(t *testing.T) {
	d := startDev(t, filepath.Join(t.TempDir(), "dev-issuer.pem"))
	get := func(path string) (int, map[string]any) {
		t.Helper()
		resp, err := d.srv.Client().Get(d.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		return resp.StatusCode, m
	}
	status, meta := get("/dev/oidc/.well-known/openid-configuration")
	if status != http.StatusOK || meta["issuer"] != d.srv.URL+"/dev/oidc" || meta["jwks_uri"] != d.srv.URL+"/dev/oidc/jwks" {
		t.Fatalf("discovery: %d %v", status, meta)
	}
	status, jwks := get("/dev/oidc/jwks")
	keys, _ := jwks["keys"].([]any)
	if status != http.StatusOK || len(keys) != 1 {
		t.Fatalf("jwks: %d %v", status, jwks)
	}
	key := keys[0].(map[string]any)
	if key["kid"] != d.issuer.KeyID() || key["alg"] != "ES256" || key["use"] != "sig" {
		t.Errorf("key = %v", key)
	}
	if _, private := key["d"]; private {
		t.Fatal("the key set publishes the private key")
	}
	if status, _ := get("/dev/oidc/other"); status != http.StatusNotFound {
		t.Errorf("other path: %d, want 404", status)
	}
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/dev/oidc/jwks", nil)
	req.Header.Set("Content-Type", "application/json")
	if resp, _ := testenv.Do(t, d.srv.Client(), req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

func TestIssuerWithoutPath(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	iss, err := devissuer.New(srv.URL, filepath.Join(t.TempDir(), "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(devissuer.DiscoveryPath, iss.Handler())
	mux.Handle(devissuer.JWKSPath, iss.Handler())
	v, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{iss.TrustedIssuer("dev", "signoff")}, oidc.VerifierOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := iss.Mint("dev-user", "signoff", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
}

func TestKeyPersistsAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "signoff-data")
	keyFile := filepath.Join(dir, "dev-issuer.pem")

	// One listener; each "process" mounts its own issuer on it.
	var current atomic.Pointer[devissuer.Issuer]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	start := func() *devissuer.Issuer {
		t.Helper()
		iss, err := devissuer.New(srv.URL+"/dev/oidc", keyFile)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		current.Store(iss)
		return iss
	}
	verify := func(raw string) error {
		t.Helper()
		// A fresh verifier: nothing cached from before the restart.
		v, err := oidc.NewRequesterVerifier([]oidc.TrustedIssuer{current.Load().TrustedIssuer("dev", "signoff")}, oidc.VerifierOptions{HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), raw)
		return err
	}

	first := start()
	raw, err := first.Mint("dev-user", "signoff", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(raw); err != nil {
		t.Fatalf("Verify before the restart: %v", err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file mode %04o, want 0600", perm)
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := di.Mode().Perm(); perm != 0o700 {
			t.Errorf("key directory mode %04o, want 0700", perm)
		}
	}
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	second := start()
	if first.KeyID() != second.KeyID() {
		t.Fatalf("key id changed across restarts: %s → %s", first.KeyID(), second.KeyID())
	}
	after, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("New rewrote an existing key file")
	}
	if err := verify(raw); err != nil {
		t.Fatalf("token minted before the restart: %v", err)
	}

	// Deleting the key file makes a new key: old tokens stop verifying.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if third := start(); third.KeyID() == first.KeyID() {
		t.Fatal("a new key file has the old key id")
	}
	var te *oidc.TokenError
	if err := verify(raw); !errors.As(err, &te) || te.Reason != oidc.ReasonUnknownKey {
		t.Fatalf("old token after the key changed: err = %v, want unknown_key", err)
	}
}

func TestLoadsOperatorSuppliedKeys(t *testing.T) {
	rsaKey, edKey, ecKey := testkeys.RSA(t, 2048), testkeys.Ed25519(t), testkeys.EC(t, elliptic.P256())
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	for name, c := range map[string]struct {
		pem []byte
		alg string
	}{
		"RSA PKCS#8":   {pkcs8(rsaKey), "RS256"},
		"RSA PKCS#1":   {pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), "RS256"},
		"Ed25519":      {pkcs8(edKey), "EdDSA"},
		"ECDSA SEC 1":  {pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "ES256"},
		"ECDSA PKCS#8": {pkcs8(ecKey), "ES256"},
	} {
		t.Run(name, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(keyFile, c.pem, 0o600); err != nil {
				t.Fatal(err)
			}
			d := startDev(t, keyFile)
			raw, err := d.issuer.Mint("dev-user", "signoff", nil, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			header, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
			if !strings.Contains(string(header), `"alg":"`+c.alg+`"`) {
				t.Errorf("header %s, want alg %s", header, c.alg)
			}
			if _, err := d.verifier(t).Verify(context.Background(), raw); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	weak, p384 := testkeys.RSA(t, 1024), testkeys.EC(t, elliptic.P384())
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	cases := map[string]struct {
		issuer, keyFile, want string
	}{
		"non-loopback issuer": {"https://signoff.example.com/dev/oidc", filepath.Join(dir, "a.pem"), "not on a loopback address"},
		"relative issuer":     {"localhost/dev/oidc", filepath.Join(dir, "a.pem"), "absolute"},
		"issuer with query":   {"http://127.0.0.1:8080/dev/oidc?x=1", filepath.Join(dir, "a.pem"), "without query"},
		"no key file":         {"http://127.0.0.1:8080/dev/oidc", "", "no key file"},
		"corrupt key file":    {"http://127.0.0.1:8080/dev/oidc", write("corrupt.pem", "not a key", 0o600), "delete it"},
		"public key":          {"http://127.0.0.1:8080/dev/oidc", write("pub.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 0o600), "not a private key"},
		"weak RSA key":        {"http://127.0.0.1:8080/dev/oidc", write("weak.pem", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(weak)})), 0o600), "2048"},
		"P-384 key":           {"http://127.0.0.1:8080/dev/oidc", write("p384.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384})), 0o600), "P-256"},
	}
	if runtime.GOOS != "windows" {
		cases["world-readable key file"] = struct{ issuer, keyFile, want string }{
			"http://127.0.0.1:8080/dev/oidc", write("open.pem", "whatever", 0o644), "chmod 600",
		}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := devissuer.New(c.issuer, c.keyFile)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestMintRefuses(t *testing.T) {
	iss, err := devissuer.New("http://localhost:8080/dev/oidc", filepath.Join(t.TempDir(), "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for name, mint := range map[string]func() (string, error){
		"reserved claim": func() (string, error) {
			return iss.Mint("dev-user", "signoff", map[string]any{"iss": "https://token.actions.githubusercontent.com"}, time.Minute)
		},
		"reserved exp":   func() (string, error) { return iss.Mint("dev-user", "signoff", map[string]any{"exp": 1}, time.Minute) },
		"empty subject":  func() (string, error) { return iss.Mint("", "signoff", nil, time.Minute) },
		"empty audience": func() (string, error) { return iss.Mint("dev-user", "", nil, time.Minute) },
		"zero ttl":       func() (string, error) { return iss.Mint("dev-user", "signoff", nil, 0) },
		"unencodable": func() (string, error) {
			return iss.Mint("dev-user", "signoff", map[string]any{"f": func() {}}, time.Minute)
		},
	} {
		t.Run(name, func(t *testing.T) {
			if tok, err := mint(); err == nil {
				t.Fatalf("minted %q", tok)
			}
		})
	}
}
