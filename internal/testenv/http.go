package testenv

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Do sends req with c and returns the response with its whole body, read
// and closed. It fails the test when the request cannot be sent or the
// body cannot be read; the status is the caller's to check.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// GetOK GETs url with the default client and no credentials and returns
// the body. It fails the test unless the answer is 200 OK.
func GetOK(t testing.TB, url string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := Do(t, http.DefaultClient, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body
}

// GetJSON GETs url as GetOK does and decodes the body into v, unless v is
// nil. It returns the body as received.
func GetJSON(t testing.TB, url string, v any) []byte {
	t.Helper()
	body := GetOK(t, url)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return body
}

// SendRaw writes raw, a request written out by hand, on a new connection
// to addr and returns the answer, its body closed. It fails the test when
// no answer comes within ten seconds: the server is waiting for what raw
// leaves out, such as the rest of an unfinished body.
func SendRaw(t testing.TB, addr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("no answer while the request is unfinished: the server waits for the rest of a request")
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
