package loopback

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestNewGuardNeedsLoopbackAddress(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", "10.1.2.3:8080", "example.com:8080", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:"} {
		if _, err := NewGuard(addr); err == nil {
			t.Errorf("NewGuard(%q) accepted", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "[::1]:8080", "localhost:8080"} {
		if _, err := NewGuard(addr); err != nil {
			t.Errorf("NewGuard(%q): %v", addr, err)
		}
	}
}

func TestCheck(t *testing.T) {
	g, err := NewGuard("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	g80, err := NewGuard("127.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		g            *Guard
		host         string
		origins      []string
		want, header string
	}{
		{g, "localhost:8080", nil, "", ""},
		{g, "LocalHost:8080", nil, "", ""},
		{g, "127.0.0.1:8080", nil, "", ""},
		{g, "127.0.0.53:8080", nil, "", ""},
		{g, "[::1]:8080", nil, "", ""},
		{g, "127.0.0.1:8080", []string{"http://localhost:8080"}, "", ""},
		{g, "localhost:8080", []string{"http://127.0.0.1:8080"}, "", ""},
		{g, "127.0.0.1:8080", []string{"http://[::1]:8080"}, "", ""},
		{g, "127.0.0.1:8080", []string{"null"}, "", ""},
		{g80, "localhost", nil, "", ""},
		{g80, "127.0.0.1", []string{"http://localhost"}, "", ""},

		{g, "evil.example:8080", nil, "421", "Host"},
		{g, "evil.example", nil, "421", "Host"},
		{g, "127.0.0.1.evil.example:8080", nil, "421", "Host"},
		{g, "localhost.evil.example:8080", nil, "421", "Host"},
		{g, "127.0.0.1", nil, "421", "Host"},
		{g, "localhost:8081", nil, "421", "Host"},
		{g, "localhost:08080", nil, "421", "Host"},
		{g, "0.0.0.0:8080", nil, "421", "Host"},
		{g, "", nil, "421", "Host"},
		{g, ":8080", nil, "421", "Host"},
		{g80, "localhost:8080", nil, "421", "Host"},
		{g, "evil.example:8080", []string{"http://localhost:8080"}, "421", "Host"},

		{g, "127.0.0.1:8080", []string{"http://evil.example"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"http://evil.example:8080"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"http://127.0.0.1.evil.example:8080"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"http://127.0.0.1:8081"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"http://127.0.0.1"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"https://127.0.0.1:8080"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"http://user@127.0.0.1:8080"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"http://127.0.0.1:8080/x"}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{""}, "403", "Origin"},
		{g, "127.0.0.1:8080", []string{"http://localhost:8080", "http://evil.example"}, "403", "Origin"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/dev/vote", nil)
		r.Host = tc.host
		for _, o := range tc.origins {
			r.Header.Add("Origin", o)
		}
		ref := tc.g.Check(r)
		switch {
		case tc.want == "" && ref != nil:
			t.Errorf("Host %q Origin %q (port %s): refused %+v", tc.host, tc.origins, tc.g.port, *ref)
		case tc.want == "421" && (ref == nil || ref.Status != http.StatusMisdirectedRequest || ref.Header != tc.header):
			t.Errorf("Host %q Origin %q (port %s): %+v, want 421 for Host", tc.host, tc.origins, tc.g.port, ref)
		case tc.want == "403" && (ref == nil || ref.Status != http.StatusForbidden || ref.Header != tc.header):
			t.Errorf("Host %q Origin %q (port %s): %+v, want 403 for Origin", tc.host, tc.origins, tc.g.port, ref)
		}
	}
}

// TestMuxGuardsEveryRoute: handlers mounted through Guard.Mux are not
// reached by a refused request, which gets a page saying why and what to
// open; handlers mounted on the mux directly are not guarded.
func TestMuxGuardsEveryRoute(t *testing.T) {
	g, err := NewGuard("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	reached := 0
	dev := g.Mux(mux)
	dev.HandleFunc("GET /dev", func(w http.ResponseWriter, _ *http.Request) { reached++ })
	dev.Handle("POST /dev/vote", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached++ }))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { reached++ })

	send := func(method, path, host, origin string) *http.Response {
		r := httptest.NewRequest(method, path, strings.NewReader("x=1"))
		r.Host = host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w.Result()
	}

	resp := send("GET", "/dev", "evil.example:8080", "")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusMisdirectedRequest || reached != 0 {
		t.Fatalf("foreign Host: %d, reached %d", resp.StatusCode, reached)
	}
	for _, want := range []string{"evil.example:8080", "DNS rebinding", `href="http://127.0.0.1:8080/dev"`, "localhost"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("refusal page lacks %q:\n%s", want, body)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("refusal headers: %v", resp.Header)
	}

	resp = send("POST", "/dev/vote", "evil.example:8080", "")
	if resp.StatusCode != http.StatusMisdirectedRequest || reached != 0 {
		t.Fatalf("foreign Host post: %d, reached %d", resp.StatusCode, reached)
	}
	resp = send("POST", "/dev/vote", "127.0.0.1:8080", "http://evil.example")
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || reached != 0 || !strings.Contains(string(body), "http://evil.example") {
		t.Fatalf("foreign Origin: %d, reached %d\n%s", resp.StatusCode, reached, body)
	}
	// The Host is reflected escaped.
	resp = send("GET", "/dev", "<b>x</b>:8080", "")
	body, _ = io.ReadAll(resp.Body)
	if strings.Contains(string(body), "<b>") {
		t.Errorf("unescaped Host in the page:\n%s", body)
	}

	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080"} {
		before := reached
		if resp := send("GET", "/dev", host, ""); resp.StatusCode != http.StatusOK || reached != before+1 {
			t.Errorf("GET with Host %q: %d", host, resp.StatusCode)
		}
		if resp := send("POST", "/dev/vote", host, "http://"+host); resp.StatusCode != http.StatusOK || reached != before+2 {
			t.Errorf("POST with Host %q: %d", host, resp.StatusCode)
		}
	}
	if resp := send("GET", "/healthz", "evil.example", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("unguarded route: %d", resp.StatusCode)
	}
}
