package main

import (
	"net/http"
	"testing"

	"github.com/signoff-dev/signoff/internal/testenv"
)

// A caller without a token who starts a body and never finishes it is
// answered at once wherever signoff refuses without reading the body (no
// token, an unknown path, a method the path does not take), not when the server's
// ReadTimeout runs out: no refusal lets it hold a connection and a
// goroutine by sending headers alone.
func TestAttackUnfinishedBodyRefusedWithoutReading(t *testing.T) {
	for name, target := range map[string]string{
		"no token on the create route": "POST /v1/requests",
		"unknown API path":             "POST /v1/nope",
		"405 twin of an API route":     "PUT /v1/requests",
		"405 twin of the audit log":    "POST /v1/audit",
		"405 twin of the OpenAPI":      "POST /v1/openapi.json",
		"method a probe does not take": "POST /healthz",
		"path outside the API":         "POST /nothing-here",
	} {
		for body, head := range map[string]string{
			"chunked":        "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n",
			"content-length": "Content-Length: 4096\r\n\r\n{\"action\":",
		} {
			t.Run(name+", "+body, func(t *testing.T) {
				fd := startFrontDoor(t, nil)
				resp := testenv.SendRaw(t, fd.addr, target+" HTTP/1.1\r\nHost: signoff.example\r\nContent-Type: application/json\r\n"+head)
				if resp.StatusCode < 400 || !resp.Close {
					t.Fatalf("status %d, close %v: want a refusal on a connection the server closes", resp.StatusCode, resp.Close)
				}
				if target == "POST /v1/requests" && resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("status %d without a token, want 401", resp.StatusCode)
				}
			})
		}
	}
}
