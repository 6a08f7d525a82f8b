package bot_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/bot"
	"github.com/signoff-dev/signoff/internal/testenv"
)

// A handler mounted on the front door that refuses before it reads the
// body, as the Teams and shared-signals receivers do when the bearer
// token is refused, answers at once on a connection it closes: a caller
// without credentials cannot hold the connection by leaving the body
// unfinished. A handler that reads the body to its end keeps the
// connection.
func TestAttackMountedHandlerRefusingBeforeTheBody(t *testing.T) {
	front := bot.New(bot.Options{Logger: slog.New(slog.DiscardHandler), Version: "test"})
	front.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewUnstartedServer(front)
	srv.Config.ReadTimeout = time.Minute
	srv.Start()
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	resp := testenv.SendRaw(t, addr, "POST /hook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Fatalf("refused without reading: status %d, close %v; want 401 on a closed connection", resp.StatusCode, resp.Close)
	}
	resp = testenv.SendRaw(t, addr, "POST /hook HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != http.StatusAccepted || resp.Close {
		t.Fatalf("body read to its end: status %d, close %v; want 202 on a kept connection", resp.StatusCode, resp.Close)
	}
}
