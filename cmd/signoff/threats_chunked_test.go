package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
)

// A caller without a token who starts a body and never finishes it is
// answered 401 at once, not when the server's ReadTimeout runs out: it
// cannot hold connections and goroutines by sending headers alone.
func TestThreatUnfinishedBodyWithoutToken(t *testing.T) {
	for name, head := range map[string]string{
		"chunked":        "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n",
		"content-length": "Content-Length: 4096\r\n\r\n{\"action\":",
	} {
		t.Run(name, func(t *testing.T) {
			fd := startFrontDoor(t, nil)
			c := fd.dial(t) // its read deadline only stops a hung test
			if _, err := io.WriteString(c, "POST /v1/requests HTTP/1.1\r\nHost: signoff.example\r\nContent-Type: application/json\r\n"+head); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("no answer while the body is unfinished: the server waits for the body of an unauthenticated request")
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
				t.Fatalf("status %d, close %v: want 401 on a connection the server closes", resp.StatusCode, resp.Close)
			}
		})
	}
}
