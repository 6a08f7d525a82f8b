package bot_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/approvals"
	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/oidc"
	"github.com/signoff-dev/signoff/policy"
	"github.com/signoff-dev/signoff/storage"
)

// scrape fetches /metrics through the fixture's server, checks the format
// and returns its lines.
func (f *apiFixture) scrape() []string {
	f.t.Helper()
	resp := f.do("GET", "/metrics", "", "")
	if resp.status != http.StatusOK {
		f.t.Fatalf("GET /metrics: %d %s", resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		f.t.Errorf("Content-Type %q", ct)
	}
	checkExposition(f.t, string(resp.body))
	return strings.Split(strings.TrimSuffix(string(resp.body), "\n"), "\n")
}

// scrapeMetrics fetches /metrics from front, checks that it answers 200 in
// the exposition format and returns its lines.
func scrapeMetrics(t testing.TB, front http.Handler) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	front.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	checkExposition(t, rec.Body.String())
	return strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
}

func wantLines(t testing.TB, lines []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(lines, func(l string) bool { return sameLine(l, w) }) {
			t.Errorf("no line %q in the scrape:\n%s", w, strings.Join(lines, "\n"))
		}
	}
}

// sameLine reports whether a scraped line says what want says: the same
// text, or the same sample (name, labels and value) with its labels in
// another order (client_golang writes them sorted by name).
func sameLine(line, want string) bool {
	if line == want {
		return true
	}
	if strings.HasPrefix(line, "#") || strings.HasPrefix(want, "#") {
		return false
	}
	name, labels, value, err := parseSample(line)
	wName, wLabels, wValue, wErr := parseSample(want)
	if err != nil || wErr != nil || name != wName || value != wValue || len(labels) != len(wLabels) {
		return false
	}
	byName := func(a, b [2]string) int { return strings.Compare(a[0], b[0]) }
	slices.SortFunc(labels, byName)
	slices.SortFunc(wLabels, byName)
	return slices.Equal(labels, wLabels)
}

// TestMetricsAfterCreateAndVotes drives the CI API and the service over a
// real bbolt store, then scrapes.
func TestMetricsAfterCreateAndVotes(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	a := f.create("dev-user")
	b := f.create("dev-user")
	f.vote(a.ID, "alice", storage.DecisionApprove) // counted, decides a
	_, err := f.svc.Vote(t.Context(), approvals.VoteInput{
		RequestID: a.ID, Decision: storage.DecisionApprove,
		Source:   approvals.Source{Platform: "dev", PlatformUser: "bob"},
		Approver: oidc.Identity{Issuer: "https://idp.example", Subject: "bob", Groups: []string{"sre"}, VerifiedAt: time.Now()},
	})
	if !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("vote on a decided request: %v", err)
	}
	if resp := f.do("GET", "/v1/requests/"+b.ID, tok, ""); resp.status != http.StatusOK {
		t.Fatalf("get: %d %s", resp.status, resp.body)
	}

	lines := f.scrape()
	wantLines(t, lines,
		`# TYPE signoff_build_info gauge`,
		`signoff_build_info{version="test"} 1`,
		`# TYPE signoff_requests_created_total counter`,
		`signoff_requests_created_total{action="deploy"} 2`,
		`signoff_votes_counted_total{decision="approve"} 1`,
		`signoff_votes_counted_total{decision="deny"} 0`,
		`signoff_votes_refused_total{reason="not_pending"} 1`,
		`signoff_decisions_total{state="approved"} 1`,
		`signoff_decisions_total{state="denied"} 0`,
		`signoff_decisions_total{state="expired"} 0`,
		`signoff_decisions_total{state="cancelled"} 0`,
		`signoff_executions_finished_total{result="succeeded"} 0`,
		`signoff_execution_attempts_total 0`,
		`# TYPE signoff_requests_pending gauge`,
		`signoff_requests_pending 1`,
		`signoff_outbox_due{kind="execute"} 0`,
		`signoff_outbox_due{kind="notify.slack"} 0`,
		`signoff_outbox_due{kind="notify.teams"} 0`,
		`signoff_outbox_due{kind="notice.slack"} 0`,
		`signoff_outbox_due{kind="notice.teams"} 0`,
		`# TYPE signoff_http_requests_total counter`,
		`signoff_http_requests_total{route="/v1/requests",method="POST",code="201"} 2`,
		`signoff_http_requests_total{route="/v1/requests/{id}",method="GET",code="200"} 1`,
		`# TYPE signoff_http_request_duration_seconds histogram`,
		`signoff_http_request_duration_seconds_bucket{route="/v1/requests",method="POST",le="+Inf"} 2`,
		`signoff_http_request_duration_seconds_count{route="/v1/requests",method="POST"} 2`,
	)
	// The scrape counts itself from the next one on.
	wantLines(t, f.scrape(), `signoff_http_requests_total{route="/metrics",method="GET",code="200"} 1`)

	// Nothing identifying a request or a person is in a label.
	body := strings.Join(lines, "\n")
	for _, secret := range []string{a.ID, b.ID, "dev-user", "alice", "bob", tok, tok[:20]} {
		if strings.Contains(body, secret) {
			t.Errorf("the scrape contains %q", secret)
		}
	}
}

// TestMetricsCountRoutesNotPaths: a request for an id is counted under the
// route pattern, whatever the id; an unknown path and an unknown method
// are counted under fixed labels.
func TestMetricsCountRoutesNotPaths(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	for _, id := range []string{"req_123", "req_456", "req_" + strings.Repeat("x", 50)} {
		if resp := f.do("GET", "/v1/requests/"+id, tok, ""); resp.status != http.StatusNotFound {
			t.Fatalf("GET %s: %d", id, resp.status)
		}
	}
	f.do("DELETE", "/v1/requests/req_789", tok, "")
	f.do("GET", "/no/such/req_123/path", "", "")
	f.do("BREW", "/healthz", "", "")
	f.do("GET", "/healthz", "", "")

	lines := f.scrape()
	wantLines(t, lines,
		`signoff_http_requests_total{route="/v1/requests/{id}",method="GET",code="404"} 3`,
		`signoff_http_requests_total{route="/v1/requests/{id}",method="DELETE",code="405"} 1`,
		`signoff_http_requests_total{route="unmatched",method="GET",code="404"} 1`,
		`signoff_http_requests_total{route="unmatched",method="OTHER",code="405"} 1`,
		`signoff_http_requests_total{route="/healthz",method="GET",code="200"} 1`,
		`signoff_http_request_duration_seconds_count{route="/v1/requests/{id}",method="GET"} 3`,
	)
	body := strings.Join(lines, "\n")
	for _, raw := range []string{"req_123", "req_456", "req_789", "/no/such", "BREW"} {
		if strings.Contains(body, raw) {
			t.Errorf("the scrape contains the raw %q:\n%s", raw, body)
		}
	}
}

// TestMetricsStoreGaugesAndLifecycle runs every counted state change
// through a service with a Slack platform and an executed action, and
// checks the counters, the store gauges and label escaping.
func TestMetricsStoreGaugesAndLifecycle(t *testing.T) {
	st := testenv.OpenStore(t)
	// An action name that needs every escape of the format.
	const action = "we\"ird\\act\nion"
	pol := &policy.Policy{Actions: map[string]*policy.Action{
		action: {
			Name:       action,
			Requesters: []policy.RequesterRule{{Issuer: "ci"}},
			Approvers:  policy.Approvers{Groups: []string{"sre"}, MinApprovals: 1},
			TTL:        time.Hour,
			Notify:     policy.Notify{Slack: []string{"C1", "C2"}},
			OnApprove:  &policy.OnApprove{Webhook: &policy.Webhook{URL: "https://deploy.example/hook", Timeout: 10 * time.Second}},
		},
	}}
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	logger := slog.New(slog.DiscardHandler)
	svc := approvals.New(st, pol, approvals.Options{Clock: clk, Logger: logger, Platforms: []string{"slack"}})
	front := bot.New(bot.Options{Service: svc, Store: st, Logger: logger, Version: "1.2.3"})
	ctx := t.Context()
	requester := storage.Requester{Issuer: "ci", Subject: "pipeline"}
	create := func(key string) (storage.Request, bool) {
		t.Helper()
		r, created, err := svc.Create(ctx, approvals.CreateInput{Requester: requester, Action: action, IdempotencyKey: key})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return r, created
	}
	vote := func(id string, d storage.Decision) error {
		_, err := svc.Vote(ctx, approvals.VoteInput{
			RequestID: id, Decision: d,
			Source:   approvals.Source{Platform: "slack", PlatformUser: "U1"},
			Approver: oidc.Identity{Issuer: "https://idp.example", Subject: "alice", Groups: []string{"sre"}, VerifiedAt: clk.Now()},
		})
		return err
	}

	a, _ := create("a")
	b, _ := create("b")
	c, _ := create("c")
	// An idempotent retry creates nothing and counts nothing.
	if _, created := create("a"); created {
		t.Fatal("the retry created a request")
	}
	wantLines(t, scrapeMetrics(t, front),
		`signoff_requests_created_total{action="we\"ird\\act\nion"} 3`,
		`signoff_requests_pending 3`,
		`signoff_outbox_due{kind="notify.slack"} 6`,
		`signoff_outbox_due{kind="execute"} 0`,
		`signoff_build_info{version="1.2.3"} 1`,
	)

	if err := vote(a.ID, storage.DecisionApprove); err != nil { // approved, execution queued
		t.Fatal(err)
	}
	if err := vote(a.ID, "maybe"); err == nil { // refused before any transaction
		t.Fatal("a vote that is neither approve nor deny was accepted")
	}
	if _, err := svc.Cancel(ctx, b.ID, approvals.Canceller{Issuer: "ci", Subject: "pipeline"}); err != nil {
		t.Fatal(err)
	}
	// c's deadline passes; the vote expires it in its own transaction and
	// is refused.
	clk.Advance(2 * time.Hour)
	if err := vote(c.ID, storage.DecisionDeny); !errors.Is(err, approvals.ErrNotPending) {
		t.Fatalf("vote after the deadline: %v", err)
	}
	if n, err := svc.ExpireDue(ctx); err != nil || n != 0 {
		t.Fatalf("expire: %d %v (the vote expired c already)", n, err)
	}

	// One failed attempt to be retried, then a success.
	claimed, err := svc.Claim(ctx, approvals.KindExecute, 10, time.Minute)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v %d", err, len(claimed))
	}
	if _, err := svc.RecordExecution(ctx, claimed[0], approvals.ExecutionResult{Retry: true, RetryAt: clk.Now(), StatusCode: 503, Error: "busy"}); err != nil {
		t.Fatal(err)
	}
	// A stale claim is not an attempt.
	if _, err := svc.RecordExecution(ctx, storage.OutboxEntry{ID: claimed[0].ID, Attempts: 99}, approvals.ExecutionResult{OK: true}); err == nil {
		t.Fatal("a stale claim was recorded")
	}
	if claimed, err = svc.Claim(ctx, approvals.KindExecute, 10, time.Minute); err != nil || len(claimed) != 1 {
		t.Fatalf("claim again: %v %d", err, len(claimed))
	}
	if _, err := svc.RecordExecution(ctx, claimed[0], approvals.ExecutionResult{OK: true, StatusCode: 200}); err != nil {
		t.Fatal(err)
	}

	// Every state change queued a card update for each of the two Slack
	// conversations: 3 created, 3 decided (a, b, c), 1 executed (a).
	const notifies = 2 * (3 + 3 + 1)
	wantLines(t, scrapeMetrics(t, front),
		`signoff_votes_counted_total{decision="approve"} 1`,
		`signoff_votes_counted_total{decision="deny"} 0`,
		`signoff_votes_refused_total{reason="invalid_request"} 1`,
		`signoff_votes_refused_total{reason="not_pending"} 1`,
		`signoff_decisions_total{state="approved"} 1`,
		`signoff_decisions_total{state="cancelled"} 1`,
		`signoff_decisions_total{state="denied"} 0`,
		`signoff_decisions_total{state="expired"} 1`,
		`signoff_executions_finished_total{result="failed"} 0`,
		`signoff_executions_finished_total{result="succeeded"} 1`,
		`signoff_execution_attempts_total 2`,
		`signoff_requests_pending 0`,
		`signoff_outbox_due{kind="execute"} 0`,
		fmt.Sprintf(`signoff_outbox_due{kind="notify.slack"} %d`, notifies),
		`signoff_outbox_due{kind="notify.teams"} 0`,
	)

	// Entries leased by a worker or due later are not due now.
	if _, err := svc.Claim(ctx, "notify.slack", 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	wantLines(t, scrapeMetrics(t, front), fmt.Sprintf(`signoff_outbox_due{kind="notify.slack"} %d`, notifies-3))

	// A gauge stops counting at the cap.
	err = st.Update(ctx, func(tx storage.Tx) error {
		for range approvals.MaxBacklogCount + 1 {
			if _, err := tx.Enqueue(storage.OutboxEntry{RequestID: a.ID, Kind: "notify.teams", NextAttempt: clk.Now(), CreatedAt: clk.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, scrapeMetrics(t, front), fmt.Sprintf(`signoff_outbox_due{kind="notify.teams"} %d`, approvals.MaxBacklogCount))
}

// TestMetricsConcurrentScrapes exercises the counters and the scrape under
// the race detector.
func TestMetricsConcurrentScrapes(t *testing.T) {
	f := newAPIFixture(t)
	tok := f.token("dev-user", nil)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 5 {
				if i%2 == 0 {
					f.scrape()
				} else {
					f.do("POST", "/v1/requests", tok, validBody)
				}
			}
		})
	}
	wg.Wait()
	wantLines(t, f.scrape(),
		`signoff_requests_created_total{action="deploy"} 10`,
		`signoff_http_requests_total{route="/v1/requests",method="POST",code="201"} 10`,
		`signoff_http_requests_total{route="/metrics",method="GET",code="200"} 10`,
	)
}

// TestMetricsWithoutService: a front door with no service still serves the
// HTTP families and the build info.
func TestMetricsWithoutService(t *testing.T) {
	front := bot.New(bot.Options{Logger: slog.New(slog.DiscardHandler)})
	front.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	rec := httptest.NewRecorder()
	front.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	checkExposition(t, rec.Body.String())
	lines := strings.Split(rec.Body.String(), "\n")
	wantLines(t, lines,
		`signoff_build_info{version="unknown"} 1`,
		`signoff_http_requests_total{route="/healthz",method="GET",code="200"} 1`,
	)
	if strings.Contains(rec.Body.String(), "signoff_requests_created_total") {
		t.Error("approvals families without a service")
	}
}

// TestMetricsServeGoAndProcessCollectors: /metrics serves client_golang's
// standard Go runtime and process families beside signoff's own.
func TestMetricsServeGoAndProcessCollectors(t *testing.T) {
	f := newAPIFixture(t)
	lines := f.scrape()
	wantLines(t, lines,
		`# TYPE go_goroutines gauge`,
		`# TYPE process_start_time_seconds gauge`,
		`signoff_build_info{version="test"} 1`,
	)
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "process_cpu_seconds_total", "go_memstats_alloc_bytes"} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, name+" ") })
		if i < 0 {
			t.Errorf("no sample of %s in the scrape", name)
			continue
		}
		if _, _, v, err := parseSample(lines[i]); err != nil || v <= 0 && name != "process_cpu_seconds_total" {
			t.Errorf("%s: %q (%v)", name, lines[i], err)
		}
	}
}

// TestMetricsRegistryPerServer: each front door counts only what it
// served, however many run in one process.
func TestMetricsRegistryPerServer(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	a := bot.New(bot.Options{Logger: logger, Version: "a"})
	b := bot.New(bot.Options{Logger: logger, Version: "b"})
	for range 3 {
		a.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/healthz", nil))
	}
	scrape := func(front *bot.Server) []string {
		rec := httptest.NewRecorder()
		front.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		checkExposition(t, rec.Body.String())
		return strings.Split(rec.Body.String(), "\n")
	}
	wantLines(t, scrape(a), `signoff_http_requests_total{route="/healthz",method="GET",code="200"} 3`, `signoff_build_info{version="a"} 1`)
	lines := scrape(b)
	wantLines(t, lines, `signoff_build_info{version="b"} 1`)
	if body := strings.Join(lines, "\n"); strings.Contains(body, `route="/healthz"`) || strings.Contains(body, `version="a"`) {
		t.Errorf("the second server shows the first's metrics:\n%s", body)
	}
}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// checkExposition checks that text parses as the Prometheus text format
// 0.0.4 the way signoff writes it: HELP and TYPE at most once per family
// and before its samples, a family's samples together, every sample line
// `name{label="value",…} value` with valid names, known escapes only, a
// float value, no series twice, histogram buckets cumulative up to +Inf
// equal to _count, counters named …_total, every name prefixed signoff_.
// The families of client_golang's standard Go runtime and process
// collectors (go_…, process_…) are the library's, not signoff's: their
// lines are skipped.
func checkExposition(t testing.TB, text string) {
	t.Helper()
	if text == "" || !strings.HasSuffix(text, "\n") {
		t.Fatalf("the exposition does not end with a line feed: %q", text)
	}
	types := map[string]string{}
	helps := map[string]bool{}
	done := map[string]bool{} // families whose samples are over
	current := ""
	series := map[string]bool{}
	buckets := map[string]float64{} // histogram series (without le) → last cumulative count
	infs := map[string]float64{}
	counts := map[string]float64{}
	familyOf := func(name string) string {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
				return base
			}
		}
		return name
	}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if standardFamily(line) {
			continue
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("line %d %q: %s", n+1, line, fmt.Sprintf(format, args...))
		}
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			kw, rest, _ := strings.Cut(rest, " ")
			name, arg, _ := strings.Cut(rest, " ")
			switch kw {
			case "HELP":
				if helps[name] {
					fail("second HELP for %s", name)
				}
				helps[name] = true
			case "TYPE":
				if types[name] != "" {
					fail("second TYPE for %s", name)
				}
				if !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, arg) {
					fail("unknown type %q", arg)
				}
				if done[name] || current == name {
					fail("TYPE after samples of %s", name)
				}
				if arg == "counter" && !strings.HasSuffix(name, "_total") {
					fail("counter not named …_total")
				}
				types[name] = arg
			default:
				continue // a plain comment
			}
			if !metricNameRE.MatchString(name) || !strings.HasPrefix(name, "signoff_") {
				fail("bad metric name %q", name)
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			fail("empty line or malformed comment")
			continue
		}
		name, labels, value, err := parseSample(line)
		if err != nil {
			fail("%v", err)
			continue
		}
		if !metricNameRE.MatchString(name) || !strings.HasPrefix(name, "signoff_") {
			fail("bad metric name %q", name)
		}
		family := familyOf(name)
		if types[family] == "" {
			fail("no TYPE declared for %s before its samples", family)
		}
		if family != current {
			if done[family] {
				fail("samples of %s are not together", family)
			}
			if current != "" {
				done[current] = true
			}
			current = family
		}
		var keys []string
		le := ""
		for _, l := range labels {
			if l[0] == "le" && strings.HasSuffix(name, "_bucket") {
				le = l[1]
				continue
			}
			keys = append(keys, l[0]+"="+l[1])
		}
		key := name + "{" + strings.Join(keys, ",") + "}"
		full := key + le
		if series[full] {
			fail("series given twice")
		}
		series[full] = true
		if types[family] == "histogram" {
			hkey := family + "{" + strings.Join(keys, ",") + "}"
			switch {
			case strings.HasSuffix(name, "_bucket"):
				if le == "" {
					fail("bucket without le")
				}
				if value < buckets[hkey] {
					fail("buckets not cumulative")
				}
				buckets[hkey] = value
				if le == "+Inf" {
					infs[hkey] = value
				}
			case strings.HasSuffix(name, "_count"):
				counts[hkey] = value
			}
		}
	}
	for k, c := range counts {
		if inf, ok := infs[k]; !ok || inf != c {
			t.Errorf("histogram %s: +Inf bucket %v, count %v", k, inf, c)
		}
	}
}

// standardFamily reports whether line (a sample, HELP or TYPE) belongs to
// a family of client_golang's Go runtime or process collectors.
func standardFamily(line string) bool {
	name := line
	if rest, ok := strings.CutPrefix(line, "# "); ok {
		kw, rest, _ := strings.Cut(rest, " ")
		if kw != "HELP" && kw != "TYPE" {
			return false
		}
		name = rest
	}
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// parseSample splits `name{l="v",…} value` into its parts, unescaping
// label values.
func parseSample(line string) (name string, labels [][2]string, value float64, err error) {
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return "", nil, 0, fmt.Errorf("no value")
	}
	name, rest := line[:i], line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		seen := map[string]bool{}
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq <= 0 {
				return "", nil, 0, fmt.Errorf("malformed label at %q", rest)
			}
			lname := rest[:eq]
			if !labelNameRE.MatchString(lname) || strings.HasPrefix(lname, "__") || seen[lname] {
				return "", nil, 0, fmt.Errorf("bad or repeated label name %q", lname)
			}
			seen[lname] = true
			rest = rest[eq+2:]
			var v strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' {
					if j+1 == len(rest) {
						return "", nil, 0, fmt.Errorf("dangling backslash")
					}
					switch rest[j+1] {
					case '\\':
						v.WriteByte('\\')
					case '"':
						v.WriteByte('"')
					case 'n':
						v.WriteByte('\n')
					default:
						return "", nil, 0, fmt.Errorf("unknown escape \\%c", rest[j+1])
					}
					j++
					continue
				}
				if c == '\n' {
					return "", nil, 0, fmt.Errorf("raw line feed in a label value")
				}
				if c == '"' {
					rest, closed = rest[j+1:], true
					break
				}
				v.WriteByte(c)
			}
			if !closed {
				return "", nil, 0, fmt.Errorf("unterminated label value")
			}
			labels = append(labels, [2]string{lname, v.String()})
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return "", nil, 0, fmt.Errorf("expected , or } at %q", rest)
			}
		}
	}
	v, ok := strings.CutPrefix(rest, " ")
	if !ok || v == "" || strings.Contains(v, " ") {
		return "", nil, 0, fmt.Errorf("expected one space and a value (no timestamp) at %q", rest)
	}
	value, err = strconv.ParseFloat(v, 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("value %q: %v", v, err)
	}
	return name, labels, value, nil
}

// recordingTB records the failures checkExposition reports.
type recordingTB struct {
	testing.TB
	failures []string
}

type fatalStop struct{}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	panic(fatalStop{})
}

// TestExpositionCheckerRejects: the format check above finds the mistakes
// it is meant to find.
func TestExpositionCheckerRejects(t *testing.T) {
	const good = "# HELP signoff_x_total X.\n# TYPE signoff_x_total counter\nsignoff_x_total{a=\"q\\\"\\\\\\n\"} 1\n"
	cases := map[string]string{
		"good":               good,
		"no final line feed": strings.TrimSuffix(good, "\n"),
		"TYPE twice":         good + "# TYPE signoff_x_total counter\n",
		"no TYPE":            "signoff_y 1\n",
		"bad name":           "# TYPE 1signoff gauge\n1signoff 1\n",
		"no prefix":          "# TYPE up gauge\nup 1\n",
		"counter name":       "# TYPE signoff_x counter\nsignoff_x 1\n",
		"bad escape":         "# TYPE signoff_y gauge\nsignoff_y{a=\"\\t\"} 1\n",
		"bad label name":     "# TYPE signoff_y gauge\nsignoff_y{a-b=\"1\"} 1\n",
		"repeated label":     "# TYPE signoff_y gauge\nsignoff_y{a=\"1\",a=\"2\"} 1\n",
		"unterminated":       "# TYPE signoff_y gauge\nsignoff_y{a=\"1} 1\n",
		"timestamp":          "# TYPE signoff_y gauge\nsignoff_y 1 1700000000\n",
		"not a number":       "# TYPE signoff_y gauge\nsignoff_y one\n",
		"series twice":       "# TYPE signoff_y gauge\nsignoff_y 1\nsignoff_y 2\n",
		"family split":       "# TYPE signoff_y gauge\n# TYPE signoff_z gauge\nsignoff_y 1\nsignoff_z 1\nsignoff_y{a=\"b\"} 1\n",
		"TYPE after samples": "signoff_y 1\n# TYPE signoff_y gauge\n",
		"histogram count":    "# TYPE signoff_h histogram\nsignoff_h_bucket{le=\"1\"} 1\nsignoff_h_bucket{le=\"+Inf\"} 2\nsignoff_h_sum 3\nsignoff_h_count 3\n",
		"not cumulative":     "# TYPE signoff_h histogram\nsignoff_h_bucket{le=\"1\"} 2\nsignoff_h_bucket{le=\"+Inf\"} 1\nsignoff_h_sum 3\nsignoff_h_count 1\n",
	}
	for name, text := range cases {
		rec := &recordingTB{TB: t}
		func() {
			defer func() {
				if v := recover(); v != nil && v != (fatalStop{}) {
					panic(v)
				}
			}()
			checkExposition(rec, text)
		}()
		if failed := len(rec.failures) > 0; failed != (name != "good") {
			t.Errorf("%s: failures %q", name, rec.failures)
		}
	}
}
