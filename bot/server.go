// Package bot is signoff's front door: the HTTP server that health checks,
// the CI API and the chat platforms' callbacks reach. It turns verified
// events into approvals calls; it never decides who may approve.
package bot

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/attest"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/ratelimit"
	"github.com/signoff-dev/signoff/storage"
)

// Options configure the front door.
type Options struct {
	Service *approvals.Service
	Store   storage.Store
	Logger  *slog.Logger
	// Version is reported by /healthz and /metrics.
	Version string
	// Verifier authenticates the bearer tokens of the CI API (/v1). When
	// nil, no issuer is trusted and every API call is refused with 401.
	Verifier TokenVerifier
	// RequestURL, when set, returns where a person can look at a request
	// (api.Request.URL), e.g. the dev console in dev mode.
	RequestURL func(id string) string
	// RequestsPerMinute caps POST /v1/requests per requester identity
	// (issuer and subject; limits.requests_per_minute); beyond it the
	// answer is 429 rate_limited with Retry-After. 0: no cap.
	RequestsPerMinute int
	// Clicks is the per chat account limit the chat adapters share
	// (limits.clicks_per_minute); /metrics counts its refusals. nil: none.
	Clicks *chatlimit.Limiter
	// Clock drives the rate limits; default the wall clock.
	Clock clock.Clock
	// Login, when set, is served at GET /v1/login-config for `signoff
	// login` (idp.cli_client_id; see login.go). nil: that endpoint answers
	// 404 saying the server does not offer it.
	Login *api.LoginConfig
	// Attestations, when set, is the signer of approval attestations
	// (the approvals service's Attester): its discovery document and keys
	// are served at /.well-known (see attestation.go). nil: those answer
	// 404, and so does the attestation of an approved request.
	Attestations *attest.Signer
}

// Server routes signoff's HTTP endpoints. Every response passes through a
// recover middleware (a panic becomes a 500 "internal" error, never a stack
// trace), an access log (method, path, status, duration, request id;
// never headers or bodies) and the HTTP metrics (by route pattern, method
// and status).
type Server struct {
	opts Options
	// mux routes; it remembers each pattern for Routes (routes.go).
	mux *routeMux
	// drain ends long-polls when shutdown begins (see Drain).
	drain     context.Context
	stopDrain context.CancelFunc
	// metrics is the registry /metrics serves and the HTTP instruments
	// (see metrics.go).
	metrics *serverMetrics
	// ext holds the readiness checks components added (see readiness.go).
	ext extensions
	// requests limits creates per requester (Options.RequestsPerMinute);
	// limited counts the calls refused by each limit (see limits.go).
	requests *ratelimit.Limiter
	polls    longPolls
	limited  limitCounters
}

// New builds the router, with the CI API (see api.go) mounted under /v1,
// its OpenAPI document at /v1/openapi.json (see openapi.go) and Prometheus
// metrics at /metrics (see metrics.go).
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	s := &Server{opts: opts, mux: newRouteMux(), requests: ratelimit.New(opts.RequestsPerMinute, opts.Clock)}
	s.drain, s.stopDrain = context.WithCancel(context.Background())
	s.metrics = newServerMetrics(s)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	// Unauthenticated like the probes: expose it to the operator's network
	// only (see metrics.go).
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
	s.mountAPI()
	s.mountLogin()
	s.mountOpenAPI()
	s.mountAttestations() // attestation.go
	return s
}

// Clicks returns the per chat account limit of Options.Clicks, for the
// chat adapters mounted on the front door to share (nil: no limit).
func (s *Server) Clicks() *chatlimit.Limiter { return s.opts.Clicks }

// Handle mounts another handler (a chat adapter, the dev console) on the
// front door.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleFunc mounts a handler function on the front door.
func (s *Server) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	s.mux.HandleFunc(pattern, h)
}

// Drain tells handlers that the server is shutting down: long-polls in
// flight (GET /v1/requests/{id}?wait=…) answer at once with the request as
// it stands, and audit streams stop, so http.Server.Shutdown need not wait
// for them. Register it with http.Server.RegisterOnShutdown. Safe to call
// more than once.
func (s *Server) Drain() { s.stopDrain() }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serveLogged(w, r) }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.opts.Store.Ping(ctx); err != nil {
		// The store's error names its file or database host (and, from
		// some drivers, the role): that is for the operator's log, not
		// for anyone who can reach the probe.
		s.opts.Logger.Warn("readiness check failed", "err", err)
		WriteError(w, http.StatusServiceUnavailable, api.CodeNotReady, "the store is not available; the server's log says why")
		return
	}
	if failing := s.failingChecks(ctx); len(failing) > 0 {
		msg := readinessMessage(failing)
		s.opts.Logger.Warn("readiness check failed", "err", msg)
		WriteError(w, http.StatusServiceUnavailable, api.CodeNotReady, msg)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// WriteError writes {"error":{"code","message"}} (api.ErrorBody) with the
// given status.
func WriteError(w http.ResponseWriter, status int, code api.Code, message string) {
	WriteJSON(w, status, api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: message}})
}
