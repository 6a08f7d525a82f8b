package cards

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/signoff-dev/signoff/clock"
)

// Defaults fills in, where they were left zero, the options every chat
// adapter has: the wall clock, slog.Default(), an HTTP client bounded by
// CallTimeout, a body cap of MaxBody, a one-second PollInterval and
// request links: under PublicURL + "/v1/requests/" when PublicURL is set,
// else none (RequestURL returns ""), so that RequestURL is never nil.
type Defaults struct {
	Clock        *clock.Clock
	Logger       **slog.Logger
	HTTPClient   **http.Client
	MaxBodyBytes *int64
	PollInterval *time.Duration
	RequestURL   *func(id string) string

	// CallTimeout is the default HTTP client's timeout.
	CallTimeout time.Duration
	// MaxBody is the default of MaxBodyBytes.
	MaxBody int64
	// PublicURL is signoff's external base URL, or "".
	PublicURL string
}

// Apply sets the zero options to their defaults.
func (d Defaults) Apply() {
	if *d.Clock == nil {
		*d.Clock = clock.Real{}
	}
	if *d.Logger == nil {
		*d.Logger = slog.Default()
	}
	if *d.HTTPClient == nil {
		*d.HTTPClient = &http.Client{Timeout: d.CallTimeout}
	}
	if *d.MaxBodyBytes <= 0 {
		*d.MaxBodyBytes = d.MaxBody
	}
	if *d.PollInterval <= 0 {
		*d.PollInterval = time.Second
	}
	if *d.RequestURL == nil {
		*d.RequestURL = func(string) string { return "" }
		if d.PublicURL != "" {
			base := strings.TrimSuffix(d.PublicURL, "/")
			*d.RequestURL = func(id string) string { return base + "/v1/requests/" + url.PathEscape(id) }
		}
	}
}
