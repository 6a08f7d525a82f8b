package main

// Load attacks on the front door as serve configures it (newHTTPServer):
// headers beyond the server's header limit and a client that sends its
// headers a byte at a time. Both must be cut off by net/http before any
// handler runs.

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/bot"
)

// frontDoor is newHTTPServer's server around a real bot front door,
// listening on loopback, with its handler wrapped to count the requests
// that reach it.
type frontDoor struct {
	srv     *http.Server
	addr    string
	handled atomic.Int32
}

// startFrontDoor builds the server as serve does, lets edit adjust it
// (before it serves), and serves it on loopback until the test ends.
func startFrontDoor(t *testing.T, edit func(*http.Server)) *frontDoor {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	front := bot.New(bot.Options{Logger: logger, Version: "test"})
	fd := &frontDoor{srv: newHTTPServer(front, front, logger)}
	inner := fd.srv.Handler
	fd.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fd.handled.Add(1)
		inner.ServeHTTP(w, r)
	})
	if edit != nil {
		edit(fd.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fd.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = fd.srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = fd.srv.Close()
		<-done
	})
	return fd
}

// dial opens a raw connection to the front door, with a read deadline
// that only keeps a broken server from hanging the test.
func (fd *frontDoor) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", fd.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

// maxHeaderBytes is the header limit srv enforces.
func maxHeaderBytes(srv *http.Server) int {
	if srv.MaxHeaderBytes > 0 {
		return srv.MaxHeaderBytes
	}
	return http.DefaultMaxHeaderBytes
}

// TestThreatOversizedHeaders sends requests whose headers exceed the
// server's header limit, in one huge header, in a huge bearer token, and
// in many small headers: each gets 431 and the connection is closed; no
// handler sees it (so no token is verified, nothing is logged or
// counted). A request with large but allowed headers does reach the
// handler, so the count would catch a request that got through.
func TestThreatOversizedHeaders(t *testing.T) {
	fd := startFrontDoor(t, nil)
	limit := maxHeaderBytes(fd.srv)
	// net/http allows 4096 bytes of slack over MaxHeaderBytes; go well
	// beyond it.
	over := limit + 64<<10

	manySmall := func() string {
		var b strings.Builder
		line := "X-Pad: " + strings.Repeat("p", 1000) + "\r\n"
		for b.Len() < over {
			b.WriteString(line)
		}
		return b.String()
	}
	cases := map[string]string{
		"one huge header":       "X-Big: " + strings.Repeat("a", over) + "\r\n",
		"huge bearer token":     "Authorization: Bearer " + strings.Repeat("e", over) + "\r\n",
		"many small headers":    manySmall(),
		"huge cookie":           "Cookie: s=" + strings.Repeat("c", over) + "\r\n",
		"huge request line URI": "",
	}
	for name, headers := range cases {
		t.Run(name, func(t *testing.T) {
			target := "/v1/requests"
			if name == "huge request line URI" {
				target += "?x=" + strings.Repeat("u", over)
			}
			c := fd.dial(t)
			req := "POST " + target + " HTTP/1.1\r\nHost: signoff.example\r\nContent-Length: 2\r\n" + headers + "\r\n{}"
			// The server may close before it has read everything:
			// write in the background and ignore the write's error.
			go func() { _, _ = io.WriteString(c, req) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("status = %d, want 431", resp.StatusCode)
			}
			if !resp.Close {
				t.Error("the server keeps the connection open after a 431")
			}
			if n := fd.handled.Load(); n != 0 {
				t.Fatalf("a handler ran %d times for an oversized request", n)
			}
		})
	}

	// Positive control: headers well inside the limit reach the front
	// door, which refuses the bad token itself.
	c := fd.dial(t)
	_, err := io.WriteString(c, "POST /v1/requests HTTP/1.1\r\nHost: signoff.example\r\nContent-Length: 2\r\nAuthorization: Bearer "+strings.Repeat("e", limit/4)+"\r\n\r\n{}")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || fd.handled.Load() != 1 {
		t.Fatalf("allowed headers: status %d, handled %d; want 401 from the handler", resp.StatusCode, fd.handled.Load())
	}
}

// TestThreatSlowlorisHeaders: a client that trickles its request headers
// and never finishes them is disconnected once ReadHeaderTimeout has
// passed since the request began, however steadily it keeps sending; no
// handler runs. serve's own timeout (asserted to be set, and short) is
// replaced by a short one here so the test need not wait for it; the
// test asserts only that the connection ends, not when.
func TestThreatSlowlorisHeaders(t *testing.T) {
	var configured time.Duration
	fd := startFrontDoor(t, func(srv *http.Server) {
		configured = srv.ReadHeaderTimeout
		srv.ReadHeaderTimeout = 300 * time.Millisecond
	})
	if configured <= 0 || configured > 30*time.Second {
		t.Fatalf("serve's ReadHeaderTimeout is %s; want one set, of at most 30s", configured)
	}

	for _, start := range []string{
		"GET /healthz HTTP/1.1\r\nHost: signoff.example\r\n",
		"POST /v1/requests HTTP/1.1\r\nHost: signoff.example\r\nTransfer-Encoding: chunked\r\n",
		"GET /v1/requests/req_1 HTTP/1.1\r\n", // not even a Host yet
	} {
		t.Run(strings.Fields(start)[1], func(t *testing.T) {
			c := fd.dial(t)
			if _, err := io.WriteString(c, start); err != nil {
				t.Fatal(err)
			}
			// Keep sending one header byte at a time, well within any
			// per-read timeout, until the server hangs up.
			stop := make(chan struct{})
			trickled := make(chan struct{})
			go func() {
				defer close(trickled)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				_, _ = io.WriteString(c, "X-Slow: ")
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := c.Write([]byte("a")); err != nil {
							return
						}
					}
				}
			}()
			defer func() { close(stop); <-trickled }()

			// Whatever the server sends (nothing, or an error status),
			// the connection must end.
			data, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a connection whose headers never ended open (read %q)", data)
			}
			if len(data) > 0 && !strings.HasPrefix(string(data), "HTTP/1.1 4") {
				t.Fatalf("the server answered an unfinished request: %q", data)
			}
			if n := fd.handled.Load(); n != 0 {
				t.Fatalf("a handler ran %d times for a request whose headers never ended", n)
			}
		})
	}
}
