package main

import (
	"fmt"
	"net/http"

	"github.com/signoff-dev/signoff/api"
)

// Every command that talks to a running server does it through package
// api's Client, made here.

// newHTTPClient is the HTTP client of the command line's calls.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{
		Transport: tr,
		// A redirect would carry the token elsewhere or turn the POST
		// into a GET; report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// newAPIClient is an api.Client of the server at base, with the command
// line's HTTP client and User-Agent.
func newAPIClient(base string, token api.TokenFunc, httpc *http.Client) (*api.Client, error) {
	c, err := api.NewClient(base, token, api.ClientOptions{HTTPClient: httpc, UserAgent: "signoff/" + version})
	if err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("--server %q: %w", base, err))
	}
	return c, nil
}

// apiErrorText renders an error answer on one line: "403 forbidden:
// message", or "404 Not Found" for an answer that is not signoff's.
func apiErrorText(e *api.Error) string {
	if e.Code != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Code, oneLine(e.Message))
	}
	return fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
}
