package testenv

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
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
