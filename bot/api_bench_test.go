package bot_test

// BenchmarkCreateAPI measures POST /v1/requests end to end over loopback
// HTTP: bearer-token verification (ES256 signature, cached keys), policy,
// and the durable commit of request, audit record and outbox entries, the
// same work per create as BenchmarkCreate in approvals.
// Run: go test -run '^$' -bench CreateAPI -benchtime 3s ./bot/
// Figures are reported in docs/performance.md; nothing here asserts a time.

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

func BenchmarkCreateAPI(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			// Cards for Slack, as BenchmarkCreate in approvals queues them,
			// so that both commit the same per create.
			f := newAPIFixture(b, apiLimits{platforms: []string{"slack"}})
			token := f.token("octocat", nil)
			// Warm the verifier's discovery and key cache.
			if r := f.do(http.MethodPost, "/v1/requests", token, `{"action":"deploy","params":{"service":"api","version":"1"}}`); r.status != http.StatusCreated {
				b.Fatalf("warm-up create: %d %s", r.status, r.body)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			body := `{"action":"deploy","params":{"service":"api","version":"1.4.2"},"reason":"benchmark"}`
			var next atomic.Int64
			done := make(chan struct{}, clients)
			b.ResetTimer()
			for c := 0; c < clients; c++ {
				go func() {
					defer func() { done <- struct{}{} }()
					for next.Add(1) <= int64(b.N) {
						req, _ := http.NewRequest(http.MethodPost, f.api.URL+"/v1/requests", strings.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+token)
						req.Header.Set("Content-Type", "application/json")
						resp, err := client.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						// Read to the end, as api.Client does: a body closed
						// unread costs the connection, and each request a dial.
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusCreated {
							b.Errorf("status %d", resp.StatusCode)
							return
						}
					}
				}()
			}
			for c := 0; c < clients; c++ {
				<-done
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
		})
	}
}
