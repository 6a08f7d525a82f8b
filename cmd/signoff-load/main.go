// Command signoff-load is signoff's load driver. It has three modes.
//
// --mode create (the default) sends POST /v1/requests. Closed loop
// (without --rate): --clients concurrent clients send at most --requests
// creates within --duration against a running server. Start the server
// with its limits raised: every create comes from one requester
// (SIGNOFF_LIMITS_REQUESTS_PER_MINUTE=1000000
// SIGNOFF_LIMITS_PENDING_PER_REQUESTER=1000000), or most answers are 429:
//
//	go run ./cmd/signoff-load --server http://127.0.0.1:8080 \
//	  --token "$(go run ./cmd/signoff dev token)" --clients 32 --requests 5000 --pid $(pgrep -n signoff)
//
// With --rig it starts signoff in this process instead (the front door on
// loopback, a bbolt store in --dir, a requester issuer of its own) and
// needs no --server or --token.
//
// --mode slack-click and --mode teams-invoke measure clicks. The driver
// starts signoff in this process with the Slack or Teams adapter, the
// platform played by a stand-in on loopback; links --approvers pretend
// approvers in the store (as a completed sign-in leaves them); creates
// enough pending requests, needing more approvals than there are
// approvers, that every click is a vote that counts (or, past
// requests × approvers clicks, the same vote again); and waits until their
// cards are posted. Then it sends Approve clicks: Slack block_actions
// signed with the signing secret, or Bot Framework adaptiveCard/action
// invokes with the Bot Connector's token. The time measured is the time to
// the HTTP answer: for Slack the verified acknowledgement (the vote is
// cast after it, as Slack requires an answer within three seconds), for
// Teams the invoke's answer, which carries the vote's outcome. When the
// load ends the server stops as serve does, the acknowledged clicks finish
// their vote, and the votes in the store are checked against the clicks.
//
//	go run ./cmd/signoff-load --mode slack-click --rate 200 --duration 10s
//	go run ./cmd/signoff-load --mode teams-invoke --rate 200 --duration 10s
//	go run ./cmd/signoff-load --mode create --rig --rate 200 --duration 10s
//
// --rate N is open loop: request i is started at i/N seconds whatever the
// earlier answers, and its latency counts from then, so a stalled server
// shows as latency instead of slowing the load.
//
// Before the load it times --bare-commits bare bbolt commits (one put and
// an fsync each, as approvals' BenchmarkBareBoltPutFsync) in --dir, the
// disk floor to compare with. The last line printed is the summary, one
// line of key=value pairs:
//
//	mode=slack-click rate=200 n=2000 p50_ms=… p95_ms=… p99_ms=… errors=0 bare_commit_p99_ms=… ratio_p99=…
//
// rate is --rate, or in closed loop the rate achieved; n the requests
// answered; errors the requests that failed or were answered with another
// status than expected (201 for creates, 200 for clicks) plus, in the
// click modes, the votes missing from the store beyond those failures;
// ratio_p99 is p99_ms / bare_commit_p99_ms.
//
// --cpuprofile, --trace, --blockprofile and --mutexprofile write a CPU
// profile, an execution trace (go tool trace), a blocking profile and a
// mutex contention profile of the load phase alone (not the setup or the
// bare commits). With the click modes and --rig they cover the server
// too, which runs in this process:
//
//	go run ./cmd/signoff-load --mode teams-invoke --rate 200 --duration 10s \
//	  --cpuprofile cpu.pprof --trace trace.out --blockprofile block.pprof
//	go tool pprof -top -cum cpu.pprof
//	go tool trace -pprof=sched trace.out > sched.pprof   # time runnable but not running
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
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signoff-dev/signoff/internal/hostlist"
	"github.com/signoff-dev/signoff/internal/loadrig"
)

// The modes.
const (
	modeCreate      = "create"
	modeSlackClick  = "slack-click"
	modeTeamsInvoke = "teams-invoke"
)

// maxPending bounds the pending requests a click run creates; clicks past
// maxPending × approvers repeat earlier votes.
const maxPending = 5000

// config is the command line.
type config struct {
	mode        string
	server      string
	token       string
	action      string
	params      string
	clients     int
	requests    int
	rate        float64
	duration    time.Duration
	rig         bool
	approvers   int
	dir         string
	bareCommits int
	pid         int
	allowRemote bool
	// Profiles of the load phase (the setup and the bare commits are left
	// out): empty means none.
	cpuProfile, traceFile, blockProfile, mutexProfile string
}

func main() {
	var c config
	flag.StringVar(&c.mode, "mode", modeCreate, "what to send: create (POST /v1/requests), slack-click (signed Slack Approve clicks) or teams-invoke (Bot Framework Approve invokes)")
	flag.StringVar(&c.server, "server", "http://127.0.0.1:8080", "signoff base URL (create without --rig)")
	flag.StringVar(&c.token, "token", "", "bearer token of a requester allowed to ask for --action (create without --rig); default $SIGNOFF_TOKEN")
	flag.StringVar(&c.action, "action", loadrig.Action, "action to request (create without --rig)")
	flag.StringVar(&c.params, "params", loadrig.Params, "params JSON object (create without --rig)")
	flag.IntVar(&c.clients, "clients", 32, "concurrent clients (create in closed loop)")
	flag.IntVar(&c.requests, "requests", 2000, "total requests to send, an upper bound (create in closed loop)")
	flag.Float64Var(&c.rate, "rate", 0, "open loop: start this many requests per second whatever the answers (required by the click modes; create without it is closed loop)")
	flag.DurationVar(&c.duration, "duration", time.Minute, "how long to send (closed loop: stop after this long even if requests remain)")
	flag.BoolVar(&c.rig, "rig", false, "create: start signoff in this process instead of loading --server (the click modes always do)")
	flag.IntVar(&c.approvers, "approvers", loadrig.DefaultApprovers, "pretend approvers linked for the click modes")
	flag.StringVar(&c.dir, "dir", "", "directory for the in-process store and the bare commit loop (default: a new temporary directory, removed at the end)")
	flag.IntVar(&c.bareCommits, "bare-commits", 500, "bare bbolt commits timed before the load, the disk floor the summary compares with")
	flag.IntVar(&c.pid, "pid", 0, "server process id, to report its peak resident memory (Linux; create without --rig)")
	flag.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback --server")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the load phase to this file (go tool pprof)")
	flag.StringVar(&c.traceFile, "trace", "", "write an execution trace of the load phase to this file (go tool trace)")
	flag.StringVar(&c.blockProfile, "blockprofile", "", "write a blocking profile of the load phase to this file")
	flag.StringVar(&c.mutexProfile, "mutexprofile", "", "write a mutex contention profile of the load phase to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: signoff-load [flags]

Loads signoff and prints latency percentiles; the last line is a summary:
mode=… rate=… n=… p50_ms=… p95_ms=… p99_ms=… errors=… bare_commit_p99_ms=… ratio_p99=…

  signoff-load --mode slack-click --rate 200 --duration 10s    signed Slack clicks, signoff in process
  signoff-load --mode teams-invoke --rate 200 --duration 10s   Bot Framework invokes, signoff in process
  signoff-load --mode create --rig --rate 200 --duration 10s   creates, signoff in process
  signoff-load --token "$(signoff dev token)" --clients 32 --requests 5000   creates against --server

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	if c.token == "" {
		c.token = os.Getenv("SIGNOFF_TOKEN")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "signoff-load:", err)
		os.Exit(1)
	}
}

// target is what a run loads: how to build request i, and what a good
// answer is.
type target struct {
	request func(ctx context.Context, i int) (*http.Request, error)
	want    int
}

// result is what the requests of a run got.
type result struct {
	lat      []time.Duration
	statuses map[int]int
	failed   int // no answer, or a request that could not be built
	elapsed  time.Duration
}

func run(ctx context.Context, c config, out io.Writer) error {
	if err := c.check(); err != nil {
		return err
	}
	dir := c.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "signoff-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	bare, err := loadrig.BareCommits(dir, c.bareCommits)
	if err != nil {
		return err
	}
	slices.Sort(bare)

	var (
		rig *loadrig.Rig
		tgt target
	)
	switch {
	case c.mode == modeCreate && !c.rig:
		tgt = createTarget(c.server, c.token, c.action, c.params)
	default:
		platform := map[string]string{modeCreate: "", modeSlackClick: loadrig.Slack, modeTeamsInvoke: loadrig.Teams}[c.mode]
		pending := 0
		if platform != "" {
			total := int(c.rate*c.duration.Seconds()) + 1
			pending = min(maxPending, (total+c.approvers-1)/c.approvers)
		}
		quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		rig, err = loadrig.Start(ctx, loadrig.Options{Platform: platform, Dir: dir, Requests: pending, Approvers: c.approvers, Logger: quiet})
		if err != nil {
			return err
		}
		defer func() {
			if rig != nil {
				_, _ = rig.Stop(context.Background())
			}
		}()
		if platform == "" {
			token, err := rig.Token(c.duration + time.Hour)
			if err != nil {
				return err
			}
			tgt = createTarget(rig.URL(), token, loadrig.Action, loadrig.Params)
		} else {
			tgt = target{request: rig.Click, want: http.StatusOK}
			fmt.Fprintf(out, "setup:    %d approvers linked, %d pending requests with their cards posted\n", c.approvers, pending)
		}
	}

	stopProfiles, err := c.startProfiles()
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var res result
	if c.rate > 0 {
		res = openLoop(runCtx, tgt, c.rate, c.duration)
	} else {
		res = closedLoop(runCtx, tgt, c.clients, c.requests)
	}
	if err := stopProfiles(); err != nil {
		return err
	}

	errs := res.failed
	for code, n := range res.statuses {
		if code != tgt.want {
			errs += n
		}
	}
	fmt.Fprintf(out, "requests: %d answered, %d failed, in %s\n", len(res.lat), res.failed, res.elapsed.Round(time.Millisecond))
	fmt.Fprintf(out, "status:   %v\n", res.statuses)
	if rig != nil {
		stopCtx, cancelStop := context.WithTimeout(context.Background(), 30*time.Second)
		votes, err := rig.Stop(stopCtx)
		cancelStop()
		if err != nil {
			return fmt.Errorf("stop: %w", err)
		}
		if c.mode != modeCreate {
			sent := len(res.lat) + res.failed
			want := rig.ExpectedVotes(sent)
			fmt.Fprintf(out, "votes:    %d counted in the store, %d expected from %d clicks\n", votes, want, sent)
			if missing := want - votes; missing > res.failed {
				errs += missing - res.failed
			}
		}
		rig = nil
	}
	achieved := float64(len(res.lat)) / res.elapsed.Seconds()
	fmt.Fprintf(out, "rate:     %.0f answers/s\n", achieved)
	slices.Sort(res.lat)
	fmt.Fprintf(out, "latency:  p50 %s  p90 %s  p99 %s  max %s\n", pct(res.lat, 0.50).Round(time.Microsecond), pct(res.lat, 0.90).Round(time.Microsecond),
		pct(res.lat, 0.99).Round(time.Microsecond), pct(res.lat, 1).Round(time.Microsecond))
	fmt.Fprintf(out, "bare:     %d bbolt commits, p50 %s  p99 %s\n", len(bare), pct(bare, 0.50).Round(time.Microsecond), pct(bare, 0.99).Round(time.Microsecond))
	if c.pid > 0 {
		if hwm, rss, err := memory(c.pid); err == nil {
			fmt.Fprintf(out, "server:   peak RSS %s, RSS now %s\n", hwm, rss)
		} else {
			fmt.Fprintf(out, "server:   memory unknown: %v\n", err)
		}
	}
	rate := c.rate
	if rate <= 0 {
		rate = achieved
	}
	p99, bareP99 := ms(pct(res.lat, 0.99)), ms(pct(bare, 0.99))
	ratio := 0.0
	if bareP99 > 0 {
		ratio = p99 / bareP99
	}
	fmt.Fprintf(out, "mode=%s rate=%g n=%d p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f errors=%d bare_commit_p99_ms=%.3f ratio_p99=%.2f\n",
		c.mode, rate, len(res.lat), ms(pct(res.lat, 0.50)), ms(pct(res.lat, 0.95)), p99, errs, bareP99, ratio)
	if c.mode == modeCreate && res.statuses[http.StatusCreated] == 0 {
		if n := res.statuses[http.StatusTooManyRequests]; n > 0 && n == len(res.lat) {
			return errors.New("no request was created: every answer was 429, the server's limits for one requester; raise limits.requests_per_minute and limits.pending_per_requester in its config for a load test")
		}
		return errors.New("no request was created; check the token and --action")
	}
	return nil
}

// check refuses a command line that cannot run.
func (c config) check() error {
	switch c.mode {
	case modeCreate:
		if c.rig {
			break
		}
		u, err := url.Parse(c.server)
		if err != nil || u.Host == "" {
			return fmt.Errorf("--server %q is not a URL", c.server)
		}
		if !c.allowRemote && !hostlist.IsLoopback(u.Hostname()) {
			return fmt.Errorf("--server %s is not a loopback address; pass --allow-remote if you really mean to load it", u.Host)
		}
		if c.token == "" {
			return errors.New("no token: pass --token or set SIGNOFF_TOKEN (in dev mode: signoff dev token), or --rig")
		}
	case modeSlackClick, modeTeamsInvoke:
		if c.rate <= 0 {
			return fmt.Errorf("--mode %s needs --rate", c.mode)
		}
		if c.approvers < 1 {
			return errors.New("--approvers must be at least 1")
		}
	default:
		return fmt.Errorf("--mode %q is none of %s, %s, %s", c.mode, modeCreate, modeSlackClick, modeTeamsInvoke)
	}
	if c.rate <= 0 && (c.clients < 1 || c.requests < 1) {
		return errors.New("--clients and --requests must be at least 1")
	}
	if c.rate < 0 || c.duration <= 0 || c.bareCommits < 1 {
		return errors.New("--rate must not be negative, --duration and --bare-commits must be positive")
	}
	return nil
}

// startProfiles starts the profiles the command line asks for; stop ends
// them and writes them out.
func (c config) startProfiles() (_ func() error, err error) {
	var stops []func() error
	stop := func() error {
		var errs []error
		for _, s := range slices.Backward(stops) {
			errs = append(errs, s())
		}
		stops = nil
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = stop()
		}
	}()
	for _, p := range []struct {
		file  string
		start func(io.Writer) error
		end   func()
	}{
		{c.cpuProfile, pprof.StartCPUProfile, pprof.StopCPUProfile},
		{c.traceFile, trace.Start, trace.Stop},
	} {
		if p.file == "" {
			continue
		}
		f, err := os.Create(p.file)
		if err != nil {
			return nil, err
		}
		if err := p.start(f); err != nil {
			f.Close()
			return nil, err
		}
		stops = append(stops, func() error { p.end(); return f.Close() })
	}
	for _, p := range []struct {
		file, name string
		on, off    func()
	}{
		{c.blockProfile, "block", func() { runtime.SetBlockProfileRate(1) }, func() { runtime.SetBlockProfileRate(0) }},
		{c.mutexProfile, "mutex", func() { runtime.SetMutexProfileFraction(1) }, func() { runtime.SetMutexProfileFraction(0) }},
	} {
		if p.file == "" {
			continue
		}
		p.on()
		stops = append(stops, func() error {
			defer p.off()
			f, err := os.Create(p.file)
			if err != nil {
				return err
			}
			return errors.Join(pprof.Lookup(p.name).WriteTo(f, 0), f.Close())
		})
	}
	return stop, nil
}

// createTarget sends creates of action with params to server as the
// bearer of token.
func createTarget(server, token, action, params string) target {
	body := fmt.Sprintf(`{"action":%q,"params":%s,"reason":"load test"}`, action, params)
	endpoint := strings.TrimSuffix(server, "/") + "/v1/requests"
	return target{want: http.StatusCreated, request: func(ctx context.Context, _ int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return req, nil
	}}
}

// recorder collects the answers of concurrent requests.
type recorder struct {
	mu       sync.Mutex
	lat      []time.Duration
	statuses map[int]int
	failed   atomic.Int64
}

// send sends request i of tgt through hc and records how long its answer
// took from start.
func (r *recorder) send(ctx context.Context, hc *http.Client, tgt target, i int, start time.Time) {
	req, err := tgt.request(ctx, i)
	if err != nil {
		r.failed.Add(1)
		return
	}
	resp, err := hc.Do(req)
	if err != nil {
		r.failed.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	r.mu.Lock()
	r.lat = append(r.lat, d)
	r.statuses[resp.StatusCode]++
	r.mu.Unlock()
}

func (r *recorder) result(elapsed time.Duration) result {
	return result{lat: r.lat, statuses: r.statuses, failed: int(r.failed.Load()), elapsed: elapsed}
}

// closedLoop sends at most requests requests from clients concurrent
// clients, each sending its next when its last is answered, until ctx
// ends.
func closedLoop(ctx context.Context, tgt target, clients, requests int) result {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
	rec := &recorder{statuses: map[int]int{}}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	began := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(requests) || ctx.Err() != nil {
					return
				}
				rec.send(ctx, hc, tgt, int(i), time.Now())
			}
		}()
	}
	wg.Wait()
	return rec.result(time.Since(began))
}

// openLoop starts request i at i/rate seconds for duration (or until ctx
// ends), whatever the earlier answers, and waits for the answers. A
// request's latency counts from when it was due.
func openLoop(ctx context.Context, tgt target, rate float64, duration time.Duration) result {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}
	rec := &recorder{statuses: map[int]int{}}
	// The answers of requests already started are awaited past the end.
	sendCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	began := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		due := began.Add(time.Duration(i) * interval)
		if due.Sub(began) >= duration {
			break
		}
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec.send(sendCtx, hc, tgt, i, due)
		}()
	}
	wg.Wait()
	return rec.result(time.Since(began))
}

// pct returns the p-quantile of sorted d (0 when empty).
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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
