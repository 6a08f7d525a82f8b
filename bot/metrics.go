package bot

// GET /metrics: Prometheus metrics in the text exposition format, version
// 0.0.4.
//
// The format is written here by hand rather than with
// github.com/prometheus/client_golang: what signoff exposes is a dozen
// families of counters, gauges and one histogram, the format for them is a
// few lines of escaping, and the module stays free of client_golang's
// dependency tree (protobuf, procfs, …) for a single endpoint. Should
// signoff ever want process or Go runtime metrics, switching to
// client_golang's registry is a local change to this file.
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
//	signoff_http_requests_total{route,method,code}       counter
//	signoff_http_request_duration_seconds{route,method}  histogram
//	signoff_rate_limited_total{limit}                    counter (requests_per_minute, pending_per_requester, clicks_per_minute)
//	signoff_callback_rejected_total{platform,reason}     counter, every rejected callback (also those the audit log samples away)
//	signoff_admin_actions_total{action}                  counter (links_list, link_revoke, requests_list, request_cancel, backup, other)
//
// Components add families of their own with Server.AddMetrics (see
// readiness.go); serve adds, when Slack Socket Mode is on:
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
// The two store gauges each count at most approvals.MaxBacklogCount
// (10,000): a value at the cap means at least that many. When the store
// cannot be read they are left out of the scrape and a warning is logged.
//
// route is the pattern the router matched ("/v1/requests/{id}", without its
// method), never the raw path, so ids in paths cannot grow the number of
// series; a request no pattern matched counts under route "unmatched".
// method is one of the standard methods or "OTHER".

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signoff-dev/signoff/approvals"
)

// metricsContentType is the text exposition format's media type.
const metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

// backlogTimeout bounds the store read of one scrape.
const backlogTimeout = 5 * time.Second

// durationBuckets are the upper bounds (seconds) of the HTTP latency
// histogram: API calls are a store commit of a few milliseconds, plus a
// token check that may fetch the issuer's keys (up to seconds); long-polls
// (?wait=) and audit streams run up to bot.MaxWait, a minute.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// routeUnmatched is the route label of requests no pattern matched.
const routeUnmatched = "unmatched"

type httpKey struct{ route, method, code string }

type routeKey struct{ route, method string }

type histogram struct {
	counts []uint64 // per bucket, not cumulative; the last is +Inf
	sum    float64
	count  uint64
}

// httpMetrics counts the requests the front door served. Safe for
// concurrent use.
type httpMetrics struct {
	mu        sync.Mutex
	requests  map[httpKey]uint64
	durations map[routeKey]*histogram
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{requests: make(map[httpKey]uint64), durations: make(map[routeKey]*histogram)}
}

// observe counts one request: pattern is the one the router matched (""
// when none), status the status code sent.
func (m *httpMetrics) observe(pattern, method string, status int, d time.Duration) {
	route := routeOf(pattern)
	method = methodLabel(method)
	code := strconv.Itoa(status)
	secs := d.Seconds()
	i, _ := slices.BinarySearch(durationBuckets, secs) // first bound ≥ secs; len = +Inf
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[httpKey{route, method, code}]++
	h := m.durations[routeKey{route, method}]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(durationBuckets)+1)}
		m.durations[routeKey{route, method}] = h
	}
	h.counts[i]++
	h.sum += secs
	h.count++
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

// serveMetrics answers GET /metrics. See the file comment on who should be
// able to reach it.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var e expositionWriter
	version := s.opts.Version
	if version == "" {
		version = "unknown"
	}
	e.family("signoff_build_info", "gauge", "Build of this signoff server; always 1.")
	e.sample("signoff_build_info", "1", "version", version)

	if svc := s.opts.Service; svc != nil {
		m := svc.Metrics()
		e.counterMap("signoff_requests_created_total", "Requests created, by action (idempotent retries excluded).", "action", m.RequestsCreated)
		e.counterMap("signoff_votes_counted_total", "Votes added to a request, by decision.", "decision", m.VotesCounted)
		e.counterMap("signoff_votes_refused_total", "Votes refused, by reason.", "reason", m.VotesRefused)
		e.counterMap("signoff_decisions_total", "Requests that left pending, by the state they reached.", "state", m.Decisions)
		e.counterMap("signoff_executions_finished_total", "Executions of approved actions that reached a final result.", "result", m.ExecutionsFinished)
		e.family("signoff_execution_attempts_total", "counter", "Execution attempts recorded, including failures to be retried.")
		e.sample("signoff_execution_attempts_total", strconv.FormatUint(m.ExecutionAttempts, 10))
		writeCallbacksRejected(&e, m.CallbacksRejected)
		e.counterMap("signoff_admin_actions_total", "Actions admins took through the admin API, by action.", "action", m.AdminActions)

		ctx, cancel := context.WithTimeout(r.Context(), backlogTimeout)
		b, err := svc.Backlog(ctx)
		cancel()
		if err != nil {
			s.opts.Logger.Warn("metrics: store gauges left out of the scrape", "err", err)
		} else {
			capped := " Counts at most " + strconv.Itoa(approvals.MaxBacklogCount) + "."
			e.family("signoff_requests_pending", "gauge", "Requests waiting for a decision."+capped)
			e.sample("signoff_requests_pending", strconv.Itoa(b.Pending))
			e.family("signoff_outbox_due", "gauge", "Outbox entries due for delivery now, by kind."+capped)
			for _, kind := range sortedKeys(b.OutboxDue) {
				e.sample("signoff_outbox_due", strconv.Itoa(b.OutboxDue[kind]), "kind", kind)
			}
		}
	}

	s.metrics.write(&e)
	e.counterMap("signoff_rate_limited_total", "Calls refused by a limit, by limit (the limits.* config key): API creates and chat clicks or commands.", "limit", s.rateLimitedCounts())
	s.writeExtraMetrics(&e)

	w.Header().Set("Content-Type", metricsContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.buf.Bytes())
	}
}

// write appends the HTTP families.
func (m *httpMetrics) write(e *expositionWriter) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.requests) > 0 {
		keys := make([]httpKey, 0, len(m.requests))
		for k := range m.requests {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b httpKey) int {
			return strings.Compare(a.route+"\x00"+a.method+"\x00"+a.code, b.route+"\x00"+b.method+"\x00"+b.code)
		})
		e.family("signoff_http_requests_total", "counter", "HTTP requests served, by route pattern, method and status code.")
		for _, k := range keys {
			e.sample("signoff_http_requests_total", strconv.FormatUint(m.requests[k], 10), "route", k.route, "method", k.method, "code", k.code)
		}
	}
	if len(m.durations) > 0 {
		keys := make([]routeKey, 0, len(m.durations))
		for k := range m.durations {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b routeKey) int {
			return strings.Compare(a.route+"\x00"+a.method, b.route+"\x00"+b.method)
		})
		const name = "signoff_http_request_duration_seconds"
		e.family(name, "histogram", "Time to serve HTTP requests (long-polls included), by route pattern and method.")
		for _, k := range keys {
			h := m.durations[k]
			var cum uint64
			for i, c := range h.counts {
				cum += c
				le := "+Inf"
				if i < len(durationBuckets) {
					le = formatFloat(durationBuckets[i])
				}
				e.sample(name+"_bucket", strconv.FormatUint(cum, 10), "route", k.route, "method", k.method, "le", le)
			}
			e.sample(name+"_sum", formatFloat(h.sum), "route", k.route, "method", k.method)
			e.sample(name+"_count", strconv.FormatUint(h.count, 10), "route", k.route, "method", k.method)
		}
	}
}

// writeCallbacksRejected appends signoff_callback_rejected_total{platform,
// reason}: every rejected platform callback, sampled out of the audit log
// or not. The family is left out until the first rejection (its label
// values are not known before).
func writeCallbacksRejected(e *expositionWriter, m map[approvals.CallbackRejection]uint64) {
	if len(m) == 0 {
		return
	}
	keys := make([]approvals.CallbackRejection, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b approvals.CallbackRejection) int {
		return strings.Compare(a.Platform+"\x00"+a.Reason, b.Platform+"\x00"+b.Reason)
	})
	const name = "signoff_callback_rejected_total"
	e.family(name, "counter", "Chat platform callbacks refused at the edge (failed verification, or a workspace or tenant not configured), by platform and reason; counts every one, also those the audit log samples away.")
	for _, k := range keys {
		e.sample(name, strconv.FormatUint(m[k], 10), "platform", k.Platform, "reason", k.Reason)
	}
}

// expositionWriter builds a scrape in the text format.
type expositionWriter struct {
	buf bytes.Buffer
}

// family writes the HELP and TYPE lines that open a metric family.
func (e *expositionWriter) family(name, typ, help string) {
	e.buf.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n")
	e.buf.WriteString("# TYPE " + name + " " + typ + "\n")
}

// sample writes one line; labels are name, value pairs.
func (e *expositionWriter) sample(name, value string, labels ...string) {
	e.buf.WriteString(name)
	if len(labels) > 0 {
		e.buf.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			e.buf.WriteString(labels[i] + `="` + escapeLabelValue(labels[i+1]) + `"`)
		}
		e.buf.WriteByte('}')
	}
	e.buf.WriteString(" " + value + "\n")
}

// counterMap writes a counter family with one label, a sample per key in
// order; nothing when m is empty.
func (e *expositionWriter) counterMap(name, help, label string, m map[string]uint64) {
	if len(m) == 0 {
		return
	}
	e.family(name, "counter", help)
	for _, k := range sortedKeys(m) {
		e.sample(name, strconv.FormatUint(m[k], 10), label, k)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string { return helpEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }

// escapeLabelValue escapes a label value as the format requires (backslash,
// double quote, line feed); invalid UTF-8 becomes U+FFFD.
func escapeLabelValue(s string) string {
	return labelEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
