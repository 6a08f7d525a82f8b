package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testop"
)

// signoff login against the test OP (a real OpenID Provider on loopback)
// with its public client, and the commands that then use the cached
// sign-in. Here the browser is an HTTP client; login_e2e_test.go drives
// the same sign-in in Chromium.

const loginCLIClient = "signoff-cli"

// People at the test IdP: an auditor and someone who is not.
var (
	loginAuditor = testop.User{Username: "audrey", Password: "audrey-pw", Email: "audrey@example.com", Name: "Audrey", Groups: []string{"audit"}}
	loginSRE     = testop.User{Username: "devon", Password: "devon-pw", Email: "devon@example.com", Name: "Devon", Groups: []string{"sre"}}
)

// loginTestConfig: dev mode (CI requests with dev tokens) with the IdP;
// %CLI% is the idp.cli_client_id line, or nothing.
const loginTestConfig = idpYAML + `  scopes: [openid, email, profile, groups, offline_access]
  token_encryption_key: login-test-token-encryption-key-0123456789
%CLI%
` + devRequestersYAML + `auditors: {groups: [audit]}
actions:
` + deployYAML + `    approvers: {groups: [sre], min_approvals: 1}
log: {level: warn}
`

// loginServer is signoff whose people sign in at a test OP.
type loginServer struct {
	*testServer
	op *testop.OP
}

// startLoginServer starts the test OP (with the CLI's public client and
// the people above) and signoff in dev mode against it; withCLI sets
// idp.cli_client_id. The login cache goes to a fresh config directory.
func startLoginServer(t *testing.T, withCLI bool) *loginServer {
	t.Helper()
	clearCIEnv(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	op := testop.New(t, clock.Real{}, "")
	op.AddPublicClient(loginCLIClient)
	op.AddUser(loginAuditor)
	op.AddUser(loginSRE)
	cli := ""
	if withCLI {
		cli = "  cli_client_id: " + loginCLIClient
	}
	return &loginServer{testServer: startWithIdP(t, op, loginTestConfig, "%CLI%", cli), op: op}
}

// loginURLRE finds the sign-in URL signoff login prints, on a line of its
// own.
var loginURLRE = regexp.MustCompile(`\n  (http://\S+)\n`)

// startLogin runs `signoff login --server … --no-browser` in the
// background and returns the sign-in URL it prints.
func (s *loginServer) startLogin(t *testing.T) (string, *testenv.LogBuffer, <-chan runResult) {
	t.Helper()
	stderr, res := runAsync("login", "--server", s.base, "--no-browser", "--timeout", "2m")
	var authURL string
	waitFor(t, 20*time.Second, "signoff login to print the sign-in URL", func() bool {
		select {
		case r := <-res:
			t.Fatalf("signoff login ended early: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		default:
		}
		if m := loginURLRE.FindStringSubmatch(stderr.String()); m != nil {
			authURL = m[1]
		}
		return authURL != ""
	})
	if !strings.HasPrefix(authURL, s.op.Issuer+"/") {
		t.Fatalf("the sign-in URL %s is not at the IdP %s", authURL, s.op.Issuer)
	}
	return authURL, stderr, res
}

// awaitCommand waits for a background command.
func awaitCommand(t *testing.T, res <-chan runResult) runResult {
	t.Helper()
	select {
	case r := <-res:
		return r
	case <-time.After(60 * time.Second):
		t.Fatal("the command did not finish")
	}
	return runResult{}
}

// httpSignIn plays the browser with an HTTP client: it opens authURL,
// submits the IdP's login form as u, and follows the redirects back to
// signoff login's loopback page, which it returns.
func httpSignIn(t *testing.T, authURL string, u testop.User) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	read := func(resp *http.Response, err error) (*http.Response, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := read(c.Get(authURL))
	m := opLoginIDRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the IdP showed no login form (%d):\n%s", resp.StatusCode, body)
	}
	target := resp.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	resp, body = read(c.PostForm(target.String(), url.Values{"id": {m[1]}, "username": {u.Username}, "password": {u.Password}, "action": {"login"}}))
	if resp.Request.URL.Hostname() != "127.0.0.1" || resp.Request.URL.Path != "/callback" {
		t.Fatalf("the sign-in did not come back to the loopback listener: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	return resp.StatusCode, body
}

// loginAs signs in to s as u with signoff login and an HTTP browser.
func (s *loginServer) loginAs(t *testing.T, u testop.User) runResult {
	t.Helper()
	authURL, _, res := s.startLogin(t)
	if status, body := httpSignIn(t, authURL, u); status != http.StatusOK {
		t.Fatalf("the loopback page answered %d:\n%s", status, body)
	}
	r := awaitCommand(t, res)
	if r.code != 0 {
		t.Fatalf("signoff login: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// cachedLogin reads the cache file's entry for s, checking the file is
// private.
func (s *loginServer) cachedLogin(t *testing.T) *loginEntry {
	t.Helper()
	path, err := loginCachePath()
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("no login cache: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("the login cache has mode %04o, want 0600", fi.Mode().Perm())
		}
		di, err := os.Stat(filepath.Dir(path))
		if err != nil || di.Mode().Perm() != 0o700 {
			t.Errorf("the login cache's directory: %v, mode %04o, want 0700", err, di.Mode().Perm())
		}
	}
	c, err := readLoginCache(path)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Logins[s.base]
	if e == nil {
		t.Fatalf("no cached login for %s in %v", s.base, c.Logins)
	}
	return e
}

// editCachedLogin changes s's cached entry.
func (s *loginServer) editCachedLogin(t *testing.T, edit func(*loginEntry)) {
	t.Helper()
	path, _ := loginCachePath()
	if err := updateLoginCache(path, func(c *loginCache) { edit(c.Logins[s.base]) }); err != nil {
		t.Fatal(err)
	}
}

// exportAsCached runs `signoff audit export --server` with no token flag
// and no $SIGNOFF_TOKEN.
func (s *loginServer) exportAsCached(t *testing.T) (int, string, string) {
	t.Helper()
	return runCmd(t, "audit", "export", "--server", s.base)
}

// postRequest sends a create with a bearer token straight to the API.
func postRequest(t *testing.T, base, token string) (int, string) {
	t.Helper()
	return bearerCall(t, http.MethodPost, base+"/v1/requests", token, `{"action":"deploy","params":{"service":"api"}}`)
}

func TestLoginCachesTheSignInAndRenewsIt(t *testing.T) {
	s := startLoginServer(t, true)
	s.requestDeploy(t)

	r := s.loginAs(t, loginAuditor)
	if !strings.Contains(r.stdout, "Signed in to "+s.base+" as audrey@example.com (groups: audit)") {
		t.Errorf("login said:\n%s", r.stdout)
	}
	e := s.cachedLogin(t)
	if e.Issuer != s.op.Issuer || e.ClientID != loginCLIClient || e.Subject != "sub-audrey" || e.RefreshToken == "" || !e.Expiry.After(time.Now()) {
		t.Fatalf("cached login: issuer %s, client %s, subject %s, refresh token %t, expiry %s", e.Issuer, e.ClientID, e.Subject, e.RefreshToken != "", e.Expiry)
	}
	if code, out, stderr := s.exportAsCached(t); code != 0 || !strings.Contains(out, `"type":"request.created"`) {
		t.Fatalf("audit export with the cached login: exit %d\n%s\n%s", code, out, stderr)
	}

	// Its ID token has expired: the next command renews it with the
	// refresh token, quietly, and keeps the renewed one.
	old := *e
	s.editCachedLogin(t, func(e *loginEntry) { e.Expiry = time.Now().Add(-time.Minute) })
	if code, out, stderr := s.exportAsCached(t); code != 0 || !strings.Contains(out, `"type":"request.created"`) || stderr != "" {
		t.Fatalf("audit export after expiry: exit %d\n%s\n%s", code, out, stderr)
	}
	if s.op.Refreshes() != 1 {
		t.Fatalf("the IdP answered %d refreshes, want 1", s.op.Refreshes())
	}
	renewed := s.cachedLogin(t)
	if renewed.IDToken == old.IDToken || renewed.RefreshToken == old.RefreshToken || !renewed.Expiry.After(time.Now()) || renewed.Subject != old.Subject {
		t.Fatalf("the renewal was not kept: new id token %t, rotated refresh token %t, expiry %s", renewed.IDToken != old.IDToken, renewed.RefreshToken != old.RefreshToken, renewed.Expiry)
	}
	// A valid token is used as it is.
	if code, _, stderr := s.exportAsCached(t); code != 0 || s.op.Refreshes() != 1 {
		t.Fatalf("audit export with a fresh cached token: exit %d, %d refreshes\n%s", code, s.op.Refreshes(), stderr)
	}

	// A renewal the IdP refuses (the refresh token was spent), or no
	// refresh token at all: sign in again.
	s.editCachedLogin(t, func(e *loginEntry) { e.Expiry, e.RefreshToken = time.Now().Add(-time.Minute), old.RefreshToken })
	code, _, stderr := s.exportAsCached(t)
	if code != exitRefused || !strings.Contains(stderr, "could not be renewed") || !strings.Contains(stderr, "run 'signoff login --server "+s.base+"' again") {
		t.Fatalf("audit export with a spent refresh token: exit %d\n%s", code, stderr)
	}
	s.editCachedLogin(t, func(e *loginEntry) { e.RefreshToken = "" })
	code, _, stderr = s.exportAsCached(t)
	if code != exitRefused || !strings.Contains(stderr, "no refresh token") || !strings.Contains(stderr, "signoff login --server") {
		t.Fatalf("audit export expired without a refresh token: exit %d\n%s", code, stderr)
	}
	s.noSecretsIn(t, "the server log", s.log.String())
}

// noSecretsIn fails when a code or token the OP handed out shows in text.
func (s *loginServer) noSecretsIn(t *testing.T, what, text string) {
	t.Helper()
	for _, secret := range s.op.IssuedTokens() {
		if strings.Contains(text, secret) {
			t.Errorf("%s contains a code or token (%.8s…)", what, secret)
		}
	}
}

// requestDeploy asks for a deploy as CI does, with a dev token.
func (s *loginServer) requestDeploy(t *testing.T) {
	t.Helper()
	code, out, stderr := runCmd(t, requestArgs(s.testServer, devToken(t, s.testServer))...)
	if code != 0 {
		t.Fatalf("request: exit %d\n%s\n%s", code, out, stderr)
	}
}

func TestPersonTokenOrder(t *testing.T) {
	s := startLoginServer(t, true)

	// Nothing at all: the message says how to get a token.
	code, _, stderr := s.exportAsCached(t)
	if code != exitUsage || !strings.Contains(stderr, "signoff login --server "+s.base) || !strings.Contains(stderr, "--token") || !strings.Contains(stderr, "$SIGNOFF_TOKEN") {
		t.Fatalf("audit export with no token: exit %d\n%s", code, stderr)
	}

	s.loginAs(t, loginAuditor)
	// --token wins over $SIGNOFF_TOKEN, which wins over the sign-in: a bad
	// token in either is what the server refuses.
	if code, _, stderr := runCmd(t, "audit", "export", "--server", s.base, "--token", "not.a.token"); code != exitRefused || !strings.Contains(stderr, "401") {
		t.Errorf("--token over the sign-in: exit %d\n%s", code, stderr)
	}
	t.Setenv("SIGNOFF_TOKEN", "not.a.token")
	if code, _, stderr := s.exportAsCached(t); code != exitRefused || !strings.Contains(stderr, "401") {
		t.Errorf("$SIGNOFF_TOKEN over the sign-in: exit %d\n%s", code, stderr)
	}
	auditor := devToken(t, s.testServer, "--sub", "auditor", "--claim", `groups=["audit"]`)
	if code, _, stderr := runCmd(t, "audit", "export", "--server", s.base, "--token", auditor); code != 0 {
		t.Errorf("--token over $SIGNOFF_TOKEN: exit %d\n%s", code, stderr)
	}
	t.Setenv("SIGNOFF_TOKEN", "")
	if code, _, stderr := s.exportAsCached(t); code != 0 {
		t.Errorf("the sign-in: exit %d\n%s", code, stderr)
	}
	// The sign-in is for its server only.
	if code, _, stderr := runCmd(t, "audit", "export", "--server", "http://127.0.0.1:1"); code != exitUsage || !strings.Contains(stderr, "signoff login --server http://127.0.0.1:1") {
		t.Errorf("another server: exit %d\n%s", code, stderr)
	}

	// CI's signoff request never reads the sign-in.
	code, _, stderr = runCmd(t, deployArgs(s.testServer)...)
	if code != exitUsage || !strings.Contains(stderr, "no token to authenticate with") {
		t.Fatalf("request with only a login cached: exit %d\n%s", code, stderr)
	}
	// Nor does the API let a login token create one.
	status, body := postRequest(t, s.base, s.cachedLogin(t).IDToken)
	if status != http.StatusForbidden || !strings.Contains(body, "login tokens are for admin and auditor endpoints") {
		t.Fatalf("POST /v1/requests with a login token: %d %s", status, body)
	}
}

func TestLoginNeedsTheServerToOfferIt(t *testing.T) {
	s := startLoginServer(t, false)
	code, _, stderr := runCmd(t, "login", "--server", s.base, "--no-browser")
	if code != exitUsage || !strings.Contains(stderr, "does not offer signoff login") || !strings.Contains(stderr, "idp.cli_client_id") {
		t.Fatalf("login at a server without idp.cli_client_id: exit %d\n%s", code, stderr)
	}
	path, _ := loginCachePath()
	if _, err := os.Stat(path); err == nil {
		t.Error("a refused login wrote the cache")
	}
	if code, _, stderr := runCmd(t, "login"); code != exitUsage || !strings.Contains(stderr, "--server is required") {
		t.Errorf("login without --server: exit %d\n%s", code, stderr)
	}
}

func TestLoginCacheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signoff", loginCacheFile)
	c := &loginCache{Version: loginCacheVersion, Logins: map[string]*loginEntry{
		"https://signoff.example.com": {Server: "https://signoff.example.com", IDToken: "a.b.c", Expiry: time.Now().Add(time.Hour)},
	}}
	if err := writeLoginCache(path, c); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: %v, mode %04o, want %04o", p, err, fi.Mode().Perm(), want)
			}
		}
	}
	// Rewritten in place (no temporary files left) and read back.
	c.Logins["http://127.0.0.1:8080"] = &loginEntry{Server: "http://127.0.0.1:8080", IDToken: "d.e.f"}
	if err := writeLoginCache(path, c); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("the cache directory holds %d files", len(entries))
	}
	got, err := readLoginCache(path)
	if err != nil || len(got.Logins) != 2 || got.Logins["https://signoff.example.com"].IDToken != "a.b.c" {
		t.Fatalf("read back: %+v %v", got, err)
	}

	if runtime.GOOS != "windows" {
		// A cache others may read is refused, with what to do.
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readLoginCache(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("a 0644 cache: %v", err)
		}
		_ = os.Chmod(path, 0o600)
	}
	// A damaged cache says so.
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readLoginCache(path); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged cache: %v", err)
	}
	// No cache is an empty one.
	if c, err := readLoginCache(filepath.Join(dir, "none.json")); err != nil || len(c.Logins) != 0 {
		t.Errorf("a missing cache: %+v %v", c, err)
	}
	raw, _ := json.Marshal(c)
	if !strings.Contains(string(raw), `"version":1`) {
		t.Errorf("cache format: %s", raw)
	}
}

func TestLoginKey(t *testing.T) {
	for in, want := range map[string]string{
		"https://Signoff.Example.com/":  "https://signoff.example.com",
		"HTTPS://signoff.example.com":   "https://signoff.example.com",
		"http://127.0.0.1:8080":         "http://127.0.0.1:8080",
		"https://example.com/signoff/":  "https://example.com/signoff",
		"https://example.com/x?y=1#z":   "https://example.com/x",
		" https://signoff.example.com ": "https://signoff.example.com",
	} {
		if got := loginKey(in); got != want {
			t.Errorf("loginKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPersonTokenFromFlagAndEnvironment(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("SIGNOFF_TOKEN", "")
	newCmd := func() *cobra.Command {
		c := &cobra.Command{Use: "probe"}
		c.Flags().String("token", "", "")
		return c
	}
	c := newCmd()
	_ = c.Flags().Set("token", "  from-flag ")
	t.Setenv("SIGNOFF_TOKEN", "from-env")
	if tok, err := personToken(c, "https://signoff.example.com"); err != nil || tok != "from-flag" {
		t.Errorf("flag: %q %v", tok, err)
	}
	if tok, err := personToken(newCmd(), "https://signoff.example.com"); err != nil || tok != "from-env" {
		t.Errorf("environment: %q %v", tok, err)
	}
	// A command without a --token flag still reads the environment.
	if tok, err := personToken(&cobra.Command{Use: "bare"}, "https://signoff.example.com"); err != nil || tok != "from-env" {
		t.Errorf("no flag: %q %v", tok, err)
	}
	t.Setenv("SIGNOFF_TOKEN", "")
	if _, err := personToken(newCmd(), "https://signoff.example.com"); err == nil || !strings.Contains(err.Error(), "signoff login --server https://signoff.example.com") {
		t.Errorf("nothing: %v", err)
	}
}
