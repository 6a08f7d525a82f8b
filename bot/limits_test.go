package bot_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/api"
	"github.com/signoff-dev/signoff/bot/chatlimit"
	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/storage"
)

// TestCreateRateLimitedPerRequester: the N+1th create in a minute by one
// requester is 429 rate_limited with Retry-After; a faithful idempotent
// retry is still answered; another requester is unaffected; once the
// clock moves on, creates work again; /metrics counts the refusals.
func TestCreateRateLimitedPerRequester(t *testing.T) {
	const limit = 3
	clk := clock.NewFake(time.Now())
	f := newAPIFixture(t, apiLimits{requestsPerMinute: limit, clock: clk})
	tok := f.token("dev-user", nil)
	create := func(tok, key string) response {
		if key == "" {
			return f.do("POST", "/v1/requests", tok, validBody)
		}
		return f.do("POST", "/v1/requests", tok, validBody, "Idempotency-Key", key)
	}
	var first api.Request
	for i := range limit {
		resp := create(tok, []string{"k1", "", ""}[i])
		if resp.status != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i+1, resp.status, resp.body)
		}
		if i == 0 {
			first = resp.view(t)
		}
	}
	resp := create(tok, "")
	if resp.status != http.StatusTooManyRequests || resp.errorCode() != api.CodeRateLimited {
		t.Fatalf("create %d: %d %s; want 429 rate_limited", limit+1, resp.status, resp.body)
	}
	if ra := resp.header.Get("Retry-After"); ra != "20" {
		t.Errorf("Retry-After %q, want 20 (one create every 20s at 3 a minute)", ra)
	}
	if msg := resp.errorMessage(); !strings.Contains(msg, "more than 3 requests in the last minute") || !strings.Contains(msg, "retry in 20 seconds") {
		t.Errorf("message %q does not say the limit and when to retry", msg)
	}
	rs, err := f.svc.List(t.Context(), storage.RequestFilter{})
	if err != nil || len(rs) != limit {
		t.Errorf("%d requests exist after the refusal (err %v), want %d", len(rs), err, limit)
	}

	// An idempotent retry of a request already made creates nothing: it
	// is answered even over the limit. A reused key with another body is
	// still a conflict.
	if resp := create(tok, "k1"); resp.status != http.StatusOK || resp.view(t).ID != first.ID {
		t.Errorf("idempotent retry over the limit: %d %s; want 200 with %s", resp.status, resp.body, first.ID)
	}
	other := strings.Replace(validBody, "1.4.2", "1.4.3", 1)
	if resp := f.do("POST", "/v1/requests", tok, other, "Idempotency-Key", "k1"); resp.status != http.StatusConflict {
		t.Errorf("reused key, other body, over the limit: %d %s; want 409", resp.status, resp.body)
	}
	// A new key over the limit is refused.
	if resp := create(tok, "k-new"); resp.status != http.StatusTooManyRequests {
		t.Errorf("new key over the limit: %d %s", resp.status, resp.body)
	}

	// Another requester has its own allowance.
	if resp := create(f.token("someone-else", nil), ""); resp.status != http.StatusCreated {
		t.Errorf("another requester: %d %s", resp.status, resp.body)
	}

	// One create comes back every 20 seconds.
	clk.Advance(19 * time.Second)
	if resp := create(tok, ""); resp.status != http.StatusTooManyRequests || resp.header.Get("Retry-After") != "1" {
		t.Errorf("after 19s: %d Retry-After %q; want 429 with 1", resp.status, resp.header.Get("Retry-After"))
	}
	clk.Advance(time.Second)
	if resp := create(tok, ""); resp.status != http.StatusCreated {
		t.Errorf("after 20s: %d %s", resp.status, resp.body)
	}
	if resp := create(tok, ""); resp.status != http.StatusTooManyRequests {
		t.Errorf("second create after 20s: %d", resp.status)
	}

	wantLines(t, f.scrape(),
		`# TYPE signoff_rate_limited_total counter`,
		`signoff_rate_limited_total{limit="requests_per_minute"} 4`,
		`signoff_rate_limited_total{limit="pending_per_requester"} 0`,
		`signoff_rate_limited_total{limit="clicks_per_minute"} 0`,
		`signoff_http_requests_total{route="/v1/requests",method="POST",code="429"} 4`,
	)
}

// TestPendingCapOverAPI: a requester with pending_per_requester requests
// pending gets 429 rate_limited (saying how many and what to do) until
// one of them is cancelled.
func TestPendingCapOverAPI(t *testing.T) {
	f := newAPIFixture(t, apiLimits{pendingPerRequester: 2})
	tok := f.token("dev-user", nil)
	a := f.create("dev-user")
	f.create("dev-user")
	resp := f.do("POST", "/v1/requests", tok, validBody)
	if resp.status != http.StatusTooManyRequests || resp.errorCode() != api.CodeRateLimited || resp.header.Get("Retry-After") != "60" {
		t.Fatalf("third create: %d Retry-After %q %s; want 429 rate_limited with Retry-After 60", resp.status, resp.header.Get("Retry-After"), resp.body)
	}
	if msg := resp.errorMessage(); !strings.Contains(msg, "has 2 requests pending") || !strings.Contains(msg, "cancel one") || !strings.Contains(msg, a.ID) {
		t.Errorf("message %q does not say how many are pending and what to do", msg)
	}
	// Another requester is not affected.
	if resp := f.do("POST", "/v1/requests", f.token("someone-else", nil), validBody); resp.status != http.StatusCreated {
		t.Errorf("another requester: %d %s", resp.status, resp.body)
	}
	if resp := f.do("POST", "/v1/requests/"+a.ID+"/cancel", tok, ""); resp.status != http.StatusOK {
		t.Fatalf("cancel: %d %s", resp.status, resp.body)
	}
	if resp := f.do("POST", "/v1/requests", tok, validBody); resp.status != http.StatusCreated {
		t.Errorf("create after a cancel: %d %s", resp.status, resp.body)
	}
	wantLines(t, f.scrape(), `signoff_rate_limited_total{limit="pending_per_requester"} 1`)
}

// TestRateLimitedMetricsCountClicks: the chat adapters' refusals show in
// /metrics under clicks_per_minute.
func TestRateLimitedMetricsCountClicks(t *testing.T) {
	clicks := chatlimit.New(1, clock.NewFake(time.Now()))
	f := newAPIFixture(t, apiLimits{clicks: clicks})
	for range 3 {
		clicks.Allow("slack", "T1", "U1")
	}
	wantLines(t, f.scrape(), `signoff_rate_limited_total{limit="clicks_per_minute"} 2`)
}
