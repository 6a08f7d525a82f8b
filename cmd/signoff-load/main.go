// Command signoff-load is signoff's load driver: it sends POST /v1/requests
// from many concurrent clients against a running server for a bounded
// number of requests and time, then prints throughput, latency percentiles
// and, given the server's pid, its peak memory.
//
// Typical use against a dev server (signoff serve --dev). Every create
// comes from one requester, so start the server with its limits raised
// (SIGNOFF_LIMITS_REQUESTS_PER_MINUTE=1000000
// SIGNOFF_LIMITS_PENDING_PER_REQUESTER=1000000), or most answers are 429:
//
//	go run ./cmd/signoff-load --server http://127.0.0.1:8080 \
//	  --token "$(go run ./cmd/signoff dev token)" --clients 32 --requests 5000 --pid $(pgrep -n signoff)
//
// It talks only to loopback addresses unless --allow-remote is given: a
// load test aimed at someone else's server by mistake is an outage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var (
		server      = flag.String("server", "http://127.0.0.1:8080", "signoff base URL")
		token       = flag.String("token", os.Getenv("SIGNOFF_TOKEN"), "bearer token of a requester allowed to ask for --action")
		action      = flag.String("action", "deploy-prod", "action to request")
		params      = flag.String("params", `{"service":"api","version":"1.4.2"}`, "params JSON object")
		clients     = flag.Int("clients", 32, "concurrent clients")
		requests    = flag.Int("requests", 2000, "total requests to send (upper bound)")
		duration    = flag.Duration("duration", time.Minute, "stop after this long even if requests remain")
		pid         = flag.Int("pid", 0, "server process id, to report its peak resident memory (Linux)")
		allowRemote = flag.Bool("allow-remote", false, "allow a non-loopback --server")
	)
	flag.Parse()
	if err := run(*server, *token, *action, *params, *clients, *requests, *duration, *pid, *allowRemote); err != nil {
		fmt.Fprintln(os.Stderr, "signoff-load:", err)
		os.Exit(1)
	}
}

func run(server, token, action, params string, clients, requests int, duration time.Duration, pid int, allowRemote bool) error {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--server %q is not a URL", server)
	}
	if !allowRemote && !isLoopback(u.Hostname()) {
		return fmt.Errorf("--server %s is not a loopback address; pass --allow-remote if you really mean to load it", u.Host)
	}
	if token == "" {
		return errors.New("no token: pass --token or set SIGNOFF_TOKEN (in dev mode: signoff dev token)")
	}
	if clients < 1 || requests < 1 {
		return errors.New("--clients and --requests must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()

	body := fmt.Sprintf(`{"action":%q,"params":%s,"reason":"load test"}`, action, params)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		statuses = map[int]int{}
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	began := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(requests) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+"/v1/requests", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)

	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("requests: %d answered, %d failed to connect, in %s with %d clients\n", len(lat), failures.Load(), elapsed.Round(time.Millisecond), clients)
	fmt.Printf("status:   %v\n", statuses)
	fmt.Printf("rate:     %.0f requests/s\n", float64(len(lat))/elapsed.Seconds())
	fmt.Printf("latency:  p50 %s  p90 %s  p99 %s  max %s\n", pct(0.50).Round(time.Microsecond), pct(0.90).Round(time.Microsecond), pct(0.99).Round(time.Microsecond), pct(1).Round(time.Microsecond))
	if pid > 0 {
		if hwm, rss, err := memory(pid); err == nil {
			fmt.Printf("server:   peak RSS %s, RSS now %s\n", hwm, rss)
		} else {
			fmt.Printf("server:   memory unknown: %v\n", err)
		}
	}
	if statuses[http.StatusCreated] == 0 {
		return errors.New("no request was created; check the token and --action")
	}
	return nil
}

// memory reads a process's peak and current resident set from /proc.
func memory(pid int) (hwm, rss string, err error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "VmHWM":
			hwm = strings.TrimSpace(v)
		case "VmRSS":
			rss = strings.TrimSpace(v)
		}
	}
	return hwm, rss, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
