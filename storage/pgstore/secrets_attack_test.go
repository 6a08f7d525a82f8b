package pgstore_test

// Attacks on pgstore.Open's documented guarantee, "The DSN never appears in
// errors", and on Migrate's. Errors from both reach
// `signoff serve`'s start-up error, `signoff migrate`, `storage copy`,
// `audit export/verify --dsn-file` and, through Ping, /readyz.

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signoff-dev/signoff/internal/testpg"
	"github.com/signoff-dev/signoff/storage/pgstore"
)

const reviewPW = "S3cretDbPassw0rd"

// TestAttackOpenErrorQuotesNoDSNSecret: pgx's parse error quotes the
// connection string after a best-effort redaction that knows only
// `password=VALUE`, `password='VALUE'` and URL forms; keyword/value strings
// with spaces or tabs around '=' (sslpassword too), a dsn_file holding just
// the password, or another secret file named by mistake would come out in
// clear. Open and Migrate never pass that text on.
func TestAttackOpenErrorQuotesNoDSNSecret(t *testing.T) {
	cases := map[string]string{
		"spaces around =":        "host=db user=signoff password = " + reviewPW + " sslmode=bogus",
		"tab before =":           "host=db user=signoff password\t=" + reviewPW + " sslmode=bogus",
		"sslpassword spaced":     "host=db user=signoff sslpassword = " + reviewPW + " sslmode=bogus",
		"password-only dsn_file": reviewPW,
		"wrong secret file":      "xoxb-123456-" + reviewPW,
	}
	for name, dsn := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := pgstore.Open(ctx, dsn, pgstore.Options{})
			if err == nil {
				t.Fatal("Open accepted the DSN")
			}
			if strings.Contains(err.Error(), reviewPW) {
				t.Errorf("Open's error shows the secret: %v", err)
			}
			_, _, err = pgstore.Migrate(ctx, dsn)
			if err == nil {
				t.Fatal("Migrate accepted the DSN")
			}
			if strings.Contains(err.Error(), reviewPW) {
				t.Errorf("Migrate's error shows the secret: %v", err)
			}
		})
	}
}

// TestAttackOpenErrorRedactsCommonDSNs: the forms pgx does redact stay redacted (URL userinfo and
// password= query values, keyword password=, quoted values, malformed URLs).
func TestAttackOpenErrorRedactsCommonDSNs(t *testing.T) {
	for _, dsn := range []string{
		"host=db user=signoff password=" + reviewPW + " sslmode=bogus",
		"host=db user=signoff password='" + reviewPW + " x' sslmode=bogus",
		`host=db user=signoff password='a\'` + reviewPW + `' sslmode=bogus`,
		"postgres://signoff:" + reviewPW + "@db/x?sslmode=bogus",
		"postgres://signoff@db/x?password=" + reviewPW + "&sslmode=bogus",
		"postgres://signoff:" + reviewPW + "@db:notaport/x",
		"postgres://signoff:ab:" + reviewPW + "@db:bad/x",
		"postgres://signoff:" + reviewPW + "@[::1/x",
		"postgresql://signoff:" + reviewPW + "%zz@db/x",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := pgstore.Open(ctx, dsn, pgstore.Options{})
		cancel()
		if err == nil {
			t.Errorf("%q accepted", dsn)
			continue
		}
		if strings.Contains(err.Error(), reviewPW) {
			t.Errorf("%q: %v", dsn, err)
		}
	}
}

// TestAttackServerErrorsHidePassword: (Needs PostgreSQL: scripts/test or scripts/with-postgres.) errors
// after a valid parse — the server refusing the database, a read-only open
// of an empty schema, an unreachable server retried in the background and
// logged at every level — do not carry the password.
func TestAttackServerErrorsHidePassword(t *testing.T) {
	server := testpg.ServerDSN(t)
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), reviewPW)

	// A database that does not exist.
	bad := *u
	bad.Path = "/no_such_db_review"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pgstore.Open(ctx, bad.String(), pgstore.Options{}); err == nil || strings.Contains(err.Error(), reviewPW) {
		t.Errorf("no such database: %v", err)
	}

	// Read-only open of a schema without signoff's tables.
	dsn, _ := testpg.Schema(t)
	su, _ := url.Parse(dsn)
	su.User = url.UserPassword(su.User.Username(), reviewPW)
	if _, err := pgstore.Open(ctx, su.String(), pgstore.Options{ReadOnly: true}); err == nil || strings.Contains(err.Error(), reviewPW) {
		t.Errorf("read-only on an empty schema: %v", err)
	}

	// Unreachable, retried in the background with a debug logger.
	logs := &reviewLockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	down := *u
	down.Host = "127.0.0.1:1"
	st, err := pgstore.Open(ctx, down.String(), pgstore.Options{Retry: true, Logger: logger})
	if err != nil {
		if strings.Contains(err.Error(), reviewPW) {
			t.Errorf("unreachable: %v", err)
		}
		return
	}
	time.Sleep(700 * time.Millisecond) // let the connector retry and log once
	perr := st.Ping(ctx)
	if perr == nil {
		t.Fatal("Ping succeeded against a closed port")
	}
	_ = st.Close()
	for what, text := range map[string]string{"Ping (/readyz)": perr.Error(), "logs": logs.String(), "String": st.String()} {
		if strings.Contains(text, reviewPW) {
			t.Errorf("%s shows the password: %s", what, text)
		}
	}
}

// reviewLockedBuffer is a bytes.Buffer safe for the connector goroutine.
type reviewLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *reviewLockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *reviewLockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
