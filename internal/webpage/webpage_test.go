package webpage

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPage(t *testing.T) {
	rec := httptest.NewRecorder()
	SetHeaders(rec, "'self'")
	WriteHTML(rec, http.StatusTeapot, []byte("<p>hi</p>"))
	res := rec.Result()
	if res.StatusCode != http.StatusTeapot {
		t.Errorf("status = %d, want %d", res.StatusCode, http.StatusTeapot)
	}
	for name, want := range map[string]string{
		"Cache-Control":           "no-store",
		"Pragma":                  "no-cache",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
		"Content-Type":            "text/html; charset=utf-8",
		"Content-Length":          "9",
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := rec.Body.String(); got != "<p>hi</p>" {
		t.Errorf("body = %q", got)
	}
}
