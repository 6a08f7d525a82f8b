package executor_test

// Attacks on webhook execution and its signature (the "Execution and
// audit" part of the attacker's checklist): each test starts from what a
// delivery guarantees and tries to break exactly that.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/executor"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/storage"
)

// TestAttackVerifyRefusesFarFutureTimestamp: Verify's window holds in
// either direction, also for a t centuries ahead, where time.Time.Sub
// saturates at the smallest Duration (whose negation is itself).
func TestAttackVerifyRefusesFarFutureTimestamp(t *testing.T) {
	body := []byte(`{"id":"req_1","decision":"approved"}`)
	for _, sec := range []int64{1e11, 1e17, 999999999999999999} {
		hdr := executor.Sign([]byte(secret), time.Unix(sec, 0), body)
		if err := executor.Verify(hdr, []byte(secret), body, t0, 0); err == nil {
			t.Errorf("t=%d (far future) accepted at %s: the 5-minute window does not hold", sec, t0.Format(time.RFC3339))
		}
	}
}

// TestAttackVerifyTimestampWindow: an ordinary stale or future t within representable
// durations is refused.
func TestAttackVerifyTimestampWindow(t *testing.T) {
	body := []byte(`{}`)
	for _, d := range []time.Duration{-6 * time.Minute, 6 * time.Minute, 24 * time.Hour * 365 * 50} {
		hdr := executor.Sign([]byte(secret), t0.Add(d), body)
		if err := executor.Verify(hdr, []byte(secret), body, t0, 0); err == nil {
			t.Errorf("signature at now%+v accepted", d)
		}
	}
	good := executor.Sign([]byte(secret), t0, body)
	for name, h := range map[string]string{
		"two t":              good + ",t=1",
		"t with sign":        strings.Replace(good, "t=", "t=+", 1),
		"body altered":       good,
		"v0 only":            strings.Replace(good, "v1=", "v0=", 1),
		"empty element":      good + ",",
		"huge header":        good + "," + strings.Repeat("x=y,", 2000),
		"timestamp shifted":  strings.Replace(good, "t=", "t=1", 1),
		"signature of other": executor.Sign([]byte("other"), t0, body),
	} {
		b := body
		if name == "body altered" {
			b = []byte(`{} `)
		}
		if err := executor.Verify(h, []byte(secret), b, t0, 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestAttackSecretPrefixNotInError: the error excerpt of a receiver's
// answer is read up to 4096 bytes, whitespace collapsed and cut to 200.
// An answer of whitespace followed by the secret puts only a prefix of the
// secret in what is read; that prefix must not land in last_error, the
// audit log (readable by every auditor) or the server log either.
func TestAttackSecretPrefixNotInError(t *testing.T) {
	c := clock.NewFake(t0)
	body := strings.Repeat(" ", 4096-24) + secret + "\n"
	rc := newReceiver(t, c, reply{status: 403, body: body})
	h := newHarness(t, c, rc.srv.URL, executor.Options{})
	r := h.approve("deploy", map[string]string{"service": "api"})
	h.runOnce(1)
	got := h.request(r.ID)
	prefix := secret[:20]
	for _, s := range append(h.auditLines(), got.Execution.LastError) {
		if strings.Contains(s, prefix) {
			t.Errorf("recorded text holds the first 24 bytes of the webhook secret (%q): %s", secret[:24], s)
			break
		}
	}
}

// TestAttackRedirectsNeverFollowed: no redirect (any 3xx) is followed, whether to another host, to
// loopback or to a metadata address; the execution fails for good.
func TestAttackRedirectsNeverFollowed(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, loc := range []string{"", "http://169.254.169.254/latest/meta-data/", "http://[::1]:1/", "http://localhost:1/"} {
			t.Run(fmt.Sprintf("%d %s", code, loc), func(t *testing.T) {
				c := clock.NewFake(t0)
				elsewhere := newReceiver(t, c)
				target := loc
				if target == "" {
					target = elsewhere.srv.URL + "/steal"
				}
				rc := newReceiver(t, c, reply{status: code, header: map[string]string{"Location": target}})
				h := newHarness(t, c, rc.srv.URL, executor.Options{})
				r := h.approve("deploy", map[string]string{"service": "api"})
				h.runOnce(1)
				got := h.request(r.ID)
				if got.Execution.Status != storage.ExecutionFailed {
					t.Fatalf("execution %+v", got.Execution)
				}
				if strings.Contains(got.Execution.LastError, "169.254") || strings.Contains(got.Execution.LastError, "/steal") {
					t.Errorf("error quotes the Location: %q", got.Execution.LastError)
				}
				if n := len(elsewhere.deliveries()); n != 0 {
					t.Fatalf("redirect target got %d calls", n)
				}
			})
		}
	}
}

// TestAttackHugeAndSlowBodies: a huge error body is not read whole, a trickled body is cut by
// the timeout, and a 2xx with a body that never ends still counts.
func TestAttackHugeAndSlowBodies(t *testing.T) {
	var written atomic.Int64
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("A", 64<<10))
		for i := 0; i < 1600; i++ { // 100 MiB
			n, err := w.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer huge.Close()
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		for i := 0; i < 200; i++ {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	defer trickle.Close()

	for name, url := range map[string]string{"huge": huge.URL, "trickle": trickle.URL} {
		t.Run(name, func(t *testing.T) {
			c := clock.NewFake(t0)
			h := newHarness(t, c, url, executor.Options{})
			h.webhook.Timeout = 500 * time.Millisecond
			h.reopen()
			r := h.approve("deploy", map[string]string{"service": "api"})
			start := time.Now()
			h.runOnce(1)
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("attempt took %s", el)
			}
			got := h.request(r.ID)
			if got.Execution.Status != storage.ExecutionPending || len(got.Execution.LastError) > 400 {
				t.Errorf("execution %+v", got.Execution)
			}
		})
	}
	if w := written.Load(); w > 16<<20 {
		t.Errorf("receiver could push %d bytes into one attempt", w)
	}
}

// TestAttackTwoExecutorsDeliverOnce: two executors (two replicas' workers) over one store racing on
// the same due executions deliver each exactly once.
func TestAttackTwoExecutorsDeliverOnce(t *testing.T) {
	c := clock.NewFake(t0)
	rc := newReceiver(t, c)
	h := newHarness(t, c, rc.srv.URL, executor.Options{Concurrency: 2})
	var ids []string
	for i := 0; i < 6; i++ {
		ids = append(ids, h.approve("deploy", map[string]string{"service": fmt.Sprintf("svc%d", i)}).ID)
	}
	other := executor.New(h.svc, executor.Options{Clock: c, Concurrency: 2, Logger: testenv.DiscardLogger()})
	var wg sync.WaitGroup
	for _, ex := range []*executor.Executor{h.exec, other, h.exec, other} {
		wg.Go(func() {
			if _, err := ex.RunOnce(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	count := map[string]int{}
	for _, d := range rc.deliveries() {
		count[d.header.Get(executor.HeaderIdempotencyKey)]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s delivered %d times", id, count[id])
		}
	}
}
