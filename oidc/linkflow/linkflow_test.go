package linkflow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/oidc/linkflow"
)

// TestStartSetsBindingCookie: the cookie tying the browser to the sign-in
// is HttpOnly, SameSite=Lax, short-lived, scoped to /link/, and Secure when
// public_url is https; pages forbid scripts, framing and caching.
func TestStartSetsBindingCookie(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		redirect string
		secure   bool
	}{
		{e.baseURL + linkflow.CallbackPath, false},
		{"https://signoff.example.com/link/callback", true},
	} {
		o := e.opts
		o.RedirectURL = tc.redirect
		lk, err := linkflow.NewLinker(o)
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		lk.Register(mux)
		u, err := lk.Begin(context.Background(), slackU1)
		if err != nil {
			t.Fatal(err)
		}
		rec := confirmStart(t, mux, u)
		if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), e.op.Issuer+"/authorize?") {
			t.Fatalf("%s: start = %d, Location %q", tc.redirect, rec.Code, rec.Header().Get("Location"))
		}
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("%d cookies set", len(cookies))
		}
		c := cookies[0]
		if !strings.HasPrefix(c.Name, "signoff_link_") || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/link/" ||
			c.MaxAge != int((10*time.Minute)/time.Second) || c.Secure != tc.secure || len(c.Value) < 43 {
			t.Fatalf("%s: cookie %+v", tc.redirect, c)
		}
		if strings.Contains(rec.Header().Get("Location"), c.Value) {
			t.Fatal("the cookie value travels to the IdP")
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("start headers %v", rec.Header())
		}
	}

	// Pages: no external assets, no script, no framing.
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/link/start?id=nope", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	body := rec.Body.String()
	if rec.Code != http.StatusBadRequest || strings.Contains(body, "src=") || strings.Contains(body, "href=") || strings.Contains(body, "<script") {
		t.Fatalf("page %d:\n%s", rec.Code, body)
	}
}

// FuzzLinkCallback: whatever arrives at the callback (query, cookie), the
// answer is never a 5xx and never echoes a stack trace.
func FuzzLinkCallback(f *testing.F) {
	e := newEnv(f)
	u := e.begin(slackU1)
	id := mustQuery(f, u).Get("id")
	for _, seed := range []string{
		"", "code=x", "state=x", "code=abc&state=" + id + ".zzz", "state=" + id + "." + id + "&code=1",
		"error=access_denied&state=" + id + ".x", "error=server_error", "error=%00&error_description=%ff%fe",
		"state=" + strings.Repeat(".", 5000), "code=%zz", "state=" + id + "&code=c&code=d",
	} {
		f.Add(seed, "cookie")
	}
	f.Fuzz(func(t *testing.T, rawQuery, cookie string) {
		req := httptest.NewRequest(http.MethodGet, "/link/callback", nil)
		req.URL.RawQuery = rawQuery
		req.AddCookie(&http.Cookie{Name: "signoff_link_0000000000000000", Value: url.QueryEscape(cookie)})
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 400 {
			t.Fatalf("callback ?%s answered %d", rawQuery, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "goroutine") {
			t.Fatal("stack trace in the page")
		}
	})
}

// FuzzLinkStart: any start query is refused with a 4xx (no sign-in was
// begun for it), never a 5xx.
func FuzzLinkStart(f *testing.F) {
	e := newEnv(f)
	for _, seed := range []string{"", "id=", "id=" + strings.Repeat("A", 43), "id=%00", "id=a&id=b", "id=" + strings.Repeat("-", 43)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/link/start", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code < 400 {
			t.Fatalf("start ?%s answered %d", rawQuery, rec.Code)
		}
	})
}

// TestHeadDoesNotUseLinkUp: link checkers and previews that send HEAD do
// not burn a sign-in link.
func TestHeadDoesNotUseLinkUp(t *testing.T) {
	e := newEnv(t)
	u := e.begin(slackU1)
	req, _ := http.NewRequest(http.MethodHead, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) != 0 {
		t.Fatalf("HEAD = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	b := newBrowser(t)
	b.open(u)
	if status, body := b.login(alice.Username, alice.Password, ""); status != http.StatusOK {
		t.Fatalf("link after a HEAD: %d\n%s", status, body)
	}
}

// TestGroupsFromUserinfo: when the ID token lacks the groups claim, the
// userinfo endpoint supplies it.
func TestGroupsFromUserinfo(t *testing.T) {
	e := newEnv(t)
	e.op.RewriteIDToken(func(c map[string]any) { delete(c, "groups") })
	e.linkAs(slackU1, alice)
	if l := e.mustLink(slackU1); len(l.Groups) != 1 || l.Groups[0] != "sre" {
		t.Fatalf("groups = %v, want [sre] from userinfo", l.Groups)
	}
}

// confirmStart opens the sign-in link u on mux and presses Continue on its
// confirmation page, returning the answer to the press.
func confirmStart(t *testing.T, mux http.Handler, u string) *httptest.ResponseRecorder {
	t.Helper()
	page := httptest.NewRecorder()
	mux.ServeHTTP(page, httptest.NewRequest(http.MethodGet, u, nil))
	id, csrf := confirmIDField.FindStringSubmatch(page.Body.String()), confirmCSRFField.FindStringSubmatch(page.Body.String())
	if page.Code != http.StatusOK || id == nil || csrf == nil {
		t.Fatalf("confirmation page: %d\n%s", page.Code, page.Body)
	}
	target, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	target.RawQuery = ""
	req := httptest.NewRequest(http.MethodPost, target.String(), strings.NewReader(url.Values{"id": {id[1]}, "csrf": {csrf[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range page.Result().Cookies() {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	return rec
}
