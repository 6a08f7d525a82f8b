package bot

// GET /metrics: Prometheus metrics, served by
// github.com/prometheus/client_golang (promhttp) from a registry each
// Server owns. signoff never uses the library's global default registry:
// a process may hold more than one front door (the tests start many), and
// each must count only its own.
//
// # Exposure
//
// /metrics is unauthenticated, like /healthz and /readyz: scrapers rarely
// hold OIDC tokens. It reveals no request ids, subjects, tokens or
// parameters (labels are action names from the policy, refusal reasons,
// decisions, states, outbox kinds, route patterns, methods and status
// codes), but it does show activity. Expose it only to the operator's
// network: have the reverse proxy or ingress in front of signoff refuse
// /metrics from outside, or scrape the pod directly.
//
// # Families
//
//	signoff_build_info{version}                          gauge, always 1
//	signoff_requests_created_total{action}               counter
//	signoff_votes_counted_total{decision}                counter (approve, deny)
//	signoff_votes_refused_total{reason}                  counter (not_eligible, not_pending, …)
//	signoff_decisions_total{state}                       counter (approved, denied, expired, cancelled)
//	signoff_executions_finished_total{result}            counter (succeeded, failed)
//	signoff_execution_attempts_total                     counter
//	signoff_requests_pending                             gauge, read from the store at scrape time
//	signoff_outbox_due{kind}                             gauge (execute, notify.slack, notify.teams, notice.slack, notice.teams), idem
//	signoff_audit_unpublished_checkpoints{witness}       gauge (slack, teams, webhook): signed checkpoints not yet delivered to a witness (audit.publish), idem
//	signoff_audit_unpublished_oldest_seconds{witness}    gauge, how long the oldest of them has waited (0: none), idem
//	signoff_http_requests_total{route,method,code}       counter
//	signoff_http_request_duration_seconds{route,method}  histogram
//	signoff_rate_limited_total{limit}                    counter (requests_per_minute, pending_per_requester, clicks_per_minute)
//	signoff_callback_rejected_total{platform,reason}     counter, every rejected callback (also those the audit log samples away)
//	signoff_admin_actions_total{action}                  counter (links_list, link_revoke, requests_list, request_cancel, block_lift, backup, other)
//
// beside client_golang's standard Go runtime and process collectors (go_…,
// process_…: goroutines, memory, GC, CPU, open files, start time).
//
// Components add families of their own with Server.AddMetrics (see
// metricsource.go); serve adds, when Slack Socket Mode is on:
//
//	signoff_slack_socket_connected                       gauge, 1 while a Socket Mode websocket is up, else 0
//	signoff_slack_socket_connection_failures_total       counter, failed attempts to open one
//
// and, with an approver Linker, the identity families of IdentityMetrics
// (identitymetrics.go): signoff_link_attempts_total,
// signoff_links_total{outcome}, signoff_idp_refresh_failures_total{reason},
// signoff_idp_refreshes_total{trigger},
// signoff_links_marked_stale_total{reason},
// signoff_link_sweeps_total{result}, signoff_links_need_sign_in; and, with
// the ssf section, the Shared Signals receiver's (cmd/signoff/ssf.go):
//
//	signoff_ssf_events_total{type,outcome}               counter, every pushed SET (type: session-revoked, credential-change, account-disabled, account-purged, verification, other, unverified; outcome: stale, no_match, unchanged, ignored, or a refusal's err)
//	signoff_ssf_refusals_total{err,reason}               counter, refused SETs (nothing changed)
//	signoff_ssf_links_stale_total                        counter, links made stale by SETs
//
// The store gauges each count at most approvals.MaxBacklogCount
// (10,000): a value at the cap means at least that many. When the store
// cannot be read they are left out of the scrape and a warning is logged.
//
// route is the pattern the router matched ("/v1/requests/{id}", without its
// method), never the raw path, so ids in paths cannot grow the number of
// series; a request no pattern matched counts under route "unmatched".
// method is one of the standard methods or "OTHER".
//
// # Where client_golang stops
//
// Only this package imports client_golang. The core (approvals, oidc) and
// the components (bot/ssf, bot/slackbot) keep their own counters and hand
// out snapshots (approvals.Service.Metrics and Backlog, linkflow.Linker.Metrics,
// ssf.Receiver.Stats, slackbot.Bot.SocketModeStatus); collectors registered
// here read them at every scrape: serviceCollector for the service, the
// store gauges and the limits, and one collector per AddMetrics source.
// What the front door observes itself, the HTTP requests, are client_golang
// instruments.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/signoff-dev/signoff/approvals"
)

// metricsContentType is the text exposition format's media type, as
// /metrics answers it to a scraper that asks for nothing else.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// escapedTextType is what promhttp answers when the scraper names no
// escaping scheme for metric names. Escaping changes nothing for
// signoff's names (all in the classic character set), so serveMetrics
// answers metricsContentType instead, the media type /metrics has always
// had. A scraper that asks for a scheme gets promhttp's answer unchanged.
const escapedTextType = metricsContentType + "; escaping=underscores"

// backlogTimeout bounds the store read of one scrape.
const backlogTimeout = 5 * time.Second

// durationBuckets are the upper bounds (seconds) of the HTTP latency
// histogram: API calls are a store commit of a few milliseconds, plus a
// token check that may fetch the issuer's keys (up to seconds); long-polls
// (?wait=) and audit streams run up to bot.MaxWait, a minute.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// routeUnmatched is the route label of requests no pattern matched.
const routeUnmatched = "unmatched"

// serverMetrics are a Server's metrics: its registry, the handler that
// serves it, and the HTTP instruments. Safe for concurrent use.
type serverMetrics struct {
	registry  *prometheus.Registry
	handler   http.Handler
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
}

// newServerMetrics builds the registry of s: the Go runtime and process
// collectors, the HTTP instruments and the service's collector.
func newServerMetrics(s *Server) *serverMetrics {
	m := &serverMetrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signoff_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signoff_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests (long-polls included), by route pattern and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		m.durations,
		newServiceCollector(s),
	)
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog: scrapeErrorLog{s.opts.Logger},
		// A collector that fails is logged and left out; the rest of the
		// scrape is still served.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m
}

// observe counts one request: pattern is the one the router matched (""
// when none), status the status code sent.
func (m *serverMetrics) observe(pattern, method string, status int, d time.Duration) {
	route, method := labelValue(routeOf(pattern)), methodLabel(method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.durations.WithLabelValues(route, method).Observe(d.Seconds())
}

// routeOf turns a ServeMux pattern ("[METHOD ][HOST]/PATH") into the route
// label: the pattern without its method.
func routeOf(pattern string) string {
	if pattern == "" {
		return routeUnmatched
	}
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		pattern = strings.TrimLeft(pattern[i:], " \t")
	}
	return pattern
}

// methodLabel keeps the label's values to a fixed set: a client may send
// any token as the method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// labelValue makes s a valid label value: client_golang refuses invalid
// UTF-8, which becomes U+FFFD (the format's escapes are the library's).
func labelValue(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// serveMetrics answers GET /metrics. See the file comment on who should be
// able to reach it.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.metrics.handler.ServeHTTP(&metricsResponse{ResponseWriter: w}, r)
}

// metricsResponse answers escapedTextType as metricsContentType (see
// escapedTextType).
type metricsResponse struct {
	http.ResponseWriter
	started bool
}

func (m *metricsResponse) start() {
	if m.started {
		return
	}
	m.started = true
	if h := m.Header(); h.Get("Content-Type") == escapedTextType {
		h.Set("Content-Type", metricsContentType)
	}
}

func (m *metricsResponse) WriteHeader(code int) {
	m.start()
	m.ResponseWriter.WriteHeader(code)
}

func (m *metricsResponse) Write(b []byte) (int, error) {
	m.start()
	return m.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (m *metricsResponse) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// scrapeErrorLog hands promhttp's errors (a collector that failed) to the
// server's logger.
type scrapeErrorLog struct{ logger *slog.Logger }

func (l scrapeErrorLog) Println(v ...any) {
	l.logger.Warn("metrics: part of the scrape left out", "err", fmt.Sprint(v...))
}

// serviceCollector reads, at every scrape, the build, the refusals of the
// limits, and (with a service) the service's counters and the store's
// backlog. Its families are described up front, so that the registry
// refuses a second family of the same name when it is registered.
type serviceCollector struct {
	s *Server

	buildInfo, rateLimited                           *prometheus.Desc
	created, votes, refused, decisions, executions   *prometheus.Desc
	attempts, callbacks, adminActions, pending, dues *prometheus.Desc
	unpublished, unpublishedAge                      *prometheus.Desc
}

func newServiceCollector(s *Server) *serviceCollector {
	capped := " Counts at most " + strconv.Itoa(approvals.MaxBacklogCount) + "."
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &serviceCollector{
		s:            s,
		buildInfo:    desc("signoff_build_info", "Build of this signoff server; always 1.", "version"),
		rateLimited:  desc("signoff_rate_limited_total", "Calls refused by a limit, by limit (the limits.* config key): API creates and chat clicks or commands.", "limit"),
		created:      desc("signoff_requests_created_total", "Requests created, by action (idempotent retries excluded).", "action"),
		votes:        desc("signoff_votes_counted_total", "Votes added to a request, by decision.", "decision"),
		refused:      desc("signoff_votes_refused_total", "Votes refused, by reason.", "reason"),
		decisions:    desc("signoff_decisions_total", "Requests that left pending, by the state they reached.", "state"),
		executions:   desc("signoff_executions_finished_total", "Executions of approved actions that reached a final result.", "result"),
		attempts:     desc("signoff_execution_attempts_total", "Execution attempts recorded, including failures to be retried."),
		callbacks:    desc("signoff_callback_rejected_total", "Chat platform callbacks refused at the edge (failed verification, or a workspace or tenant not configured), by platform and reason; counts every one, also those the audit log samples away.", "platform", "reason"),
		adminActions: desc("signoff_admin_actions_total", "Actions admins took through the admin API, by action.", "action"),
		pending:      desc("signoff_requests_pending", "Requests waiting for a decision."+capped),
		dues:         desc("signoff_outbox_due", "Outbox entries due for delivery now, by kind."+capped, "kind"),
		unpublished: desc("signoff_audit_unpublished_checkpoints",
			"Signed audit checkpoints not yet delivered to a witness (audit.publish), by kind of witness, whether due, backing off or waiting behind an older one."+capped, "witness"),
		unpublishedAge: desc("signoff_audit_unpublished_oldest_seconds",
			"How long the oldest signed audit checkpoint not yet delivered to a witness has waited, by kind of witness; 0 when none.", "witness"),
	}
}

// Describe implements prometheus.Collector.
func (c *serviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.buildInfo, c.rateLimited, c.created, c.votes, c.refused, c.decisions,
		c.executions, c.attempts, c.callbacks, c.adminActions, c.pending, c.dues,
		c.unpublished, c.unpublishedAge,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A family with no sample (no
// vote refused yet, no callback rejected yet) is left out of the scrape.
func (c *serviceCollector) Collect(ch chan<- prometheus.Metric) {
	version := c.s.opts.Version
	if version == "" {
		version = "unknown"
	}
	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, labelValue(version))
	counterMap(ch, c.rateLimited, c.s.rateLimitedCounts())

	svc := c.s.opts.Service
	if svc == nil {
		return
	}
	m := svc.Metrics()
	counterMap(ch, c.created, m.RequestsCreated)
	counterMap(ch, c.votes, m.VotesCounted)
	counterMap(ch, c.refused, m.VotesRefused)
	counterMap(ch, c.decisions, m.Decisions)
	counterMap(ch, c.executions, m.ExecutionsFinished)
	ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(m.ExecutionAttempts))
	for k, n := range m.CallbacksRejected {
		ch <- prometheus.MustNewConstMetric(c.callbacks, prometheus.CounterValue, float64(n), labelValue(k.Platform), labelValue(k.Reason))
	}
	counterMap(ch, c.adminActions, m.AdminActions)

	// The scrape carries no context: the read is bounded by backlogTimeout
	// and ends early when the server shuts down (Drain).
	ctx, cancel := context.WithTimeout(c.s.drain, backlogTimeout)
	b, err := svc.Backlog(ctx)
	cancel()
	if err != nil {
		c.s.opts.Logger.Warn("metrics: store gauges left out of the scrape", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(b.Pending))
	for kind, n := range b.OutboxDue {
		ch <- prometheus.MustNewConstMetric(c.dues, prometheus.GaugeValue, float64(n), labelValue(kind))
	}
	for witness, n := range b.Unpublished {
		ch <- prometheus.MustNewConstMetric(c.unpublished, prometheus.GaugeValue, float64(n), labelValue(witness))
	}
	for witness, age := range b.OldestUnpublished {
		ch <- prometheus.MustNewConstMetric(c.unpublishedAge, prometheus.GaugeValue, age.Seconds(), labelValue(witness))
	}
}

// counterMap sends a counter per key of m, under the one label of d.
func counterMap(ch chan<- prometheus.Metric, d *prometheus.Desc, m map[string]uint64) {
	for k, n := range m {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labelValue(k))
	}
}
