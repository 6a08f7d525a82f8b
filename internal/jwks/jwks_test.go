package jwks_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/signoff-dev/signoff/clock"
	"github.com/signoff-dev/signoff/internal/jwks"
	"github.com/signoff-dev/signoff/internal/testenv"
	"github.com/signoff-dev/signoff/internal/testkeys"
)

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var algs = []string{"RS256", "ES256", "EdDSA"}

var joseAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// rsaKeys are generated once (generation is slow).
var rsaKeys = sync.OnceValue(func() []*rsa.PrivateKey {
	keys := make([]*rsa.PrivateKey, 3)
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// published is one key the test issuer publishes.
type published struct {
	kid  string
	alg  string // the JWK's alg member; empty: none
	use  string
	priv crypto.Signer
	// extra members merged into the JWK (endorsements).
	extra map[string]any
}

func (p published) jwk(t testing.TB) map[string]any {
	t.Helper()
	b, err := jose.JSONWebKey{Key: p.priv.Public(), KeyID: p.kid, Algorithm: p.alg, Use: p.use}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range p.extra {
		m[k] = v
	}
	return m
}

// issuer serves OpenID metadata at /metadata and its key set at /keys,
// counting requests.
type issuer struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	keys      []published
	keyStatus int           // non-zero: /keys answers with it
	jwksURI   string        // non-empty: the metadata names it
	gate      chan struct{} // non-nil: /keys waits for it

	metaHits atomic.Int32
	keyHits  atomic.Int32
}

func newIssuer(t testing.TB, tlsServer bool, keys ...published) *issuer {
	is := &issuer{t: t, keys: keys}
	if tlsServer {
		is.srv = httptest.NewTLSServer(is)
	} else {
		is.srv = httptest.NewServer(is)
	}
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) set(f func(is *issuer)) {
	is.mu.Lock()
	defer is.mu.Unlock()
	f(is)
}

func (is *issuer) keysURL() string     { return is.srv.URL + "/keys" }
func (is *issuer) metadataURL() string { return is.srv.URL + "/metadata" }

func (is *issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	is.mu.Lock()
	keys, status, uri, gate := append([]published(nil), is.keys...), is.keyStatus, is.jwksURI, is.gate
	is.mu.Unlock()
	switch r.URL.Path {
	case "/metadata":
		is.metaHits.Add(1)
		if uri == "" {
			uri = is.keysURL()
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.srv.URL, "jwks_uri": uri})
	case "/keys":
		is.keyHits.Add(1)
		if gate != nil {
			<-gate
		}
		if status != 0 {
			http.Error(w, "keys unavailable", status)
			return
		}
		set := []any{}
		for _, k := range keys {
			set = append(set, k.jwk(is.t))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": set})
	default:
		http.NotFound(w, r)
	}
}

func newCache(is *issuer, clk clock.Clock, edit func(*jwks.Options)) *jwks.Cache {
	opts := jwks.Options{
		URL:             is.keysURL(),
		Algorithms:      algs,
		HTTPClient:      is.srv.Client(),
		Clock:           clk,
		RefreshInterval: time.Minute,
		RetryInterval:   10 * time.Second,
		MaxAge:          time.Hour,
	}
	if edit != nil {
		edit(&opts)
	}
	return jwks.New(opts)
}

// start serves keys from a new plain-http issuer and returns a cache of
// them (newCache's options changed by edit) on a fake clock, after one
// verification by the first key, with its kid and alg, that downloads the
// set.
func start(t testing.TB, edit func(*jwks.Options), keys ...published) (*issuer, *clock.Fake, *jwks.Cache) {
	t.Helper()
	is := newIssuer(t, false, keys...)
	clk := clock.NewFake(t0)
	c := newCache(is, clk, edit)
	first := keys[0]
	mustVerify(t, c, sign(t, first.priv, jose.SignatureAlgorithm(first.alg), first.kid))
	return is, clk, c
}

// wantKeyHits fails t unless the issuer's key set has been fetched want
// times.
func wantKeyHits(t testing.TB, is *issuer, want int, why string) {
	t.Helper()
	if n := is.keyHits.Load(); int(n) != want {
		t.Fatalf("key set fetched %d times, want %d%s", n, want, why)
	}
}

// refused verifies jws and fails t unless the error is kind; it returns
// the error.
func refused(t testing.TB, c *jwks.Cache, jws *jose.JSONWebSignature, kind error) error {
	t.Helper()
	_, _, err := c.Verify(context.Background(), jws)
	wantErr(t, err, kind)
	return err
}

// sign returns a parsed compact JWS of payload by priv with alg, naming
// kid in its header (no kid when empty).
func sign(t testing.TB, priv crypto.Signer, alg jose.SignatureAlgorithm, kid string) *jose.JSONWebSignature {
	t.Helper()
	raw := testkeys.Sign(t, priv, alg, kid, []byte(`{"iss":"https://issuer.example"}`), nil)
	jws, err := jose.ParseSignedCompact(raw, joseAlgs)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

func mustVerify(t testing.TB, c *jwks.Cache, jws *jose.JSONWebSignature) *jwks.Key {
	t.Helper()
	payload, key, err := c.Verify(context.Background(), jws)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if string(payload) != `{"iss":"https://issuer.example"}` || key == nil {
		t.Fatalf("Verify: payload %q, key %v", payload, key)
	}
	return key
}

func wantErr(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
}

func TestUnknownKidRefreshIsPaced(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	is, clk, c := start(t, nil, k1)
	testkeys.CheckPacedRefresh(t, testkeys.PacedRefresh{
		Tokens: 200,
		Verify: func(i int) error {
			_, _, err := c.Verify(context.Background(), sign(t, k1.priv, jose.RS256, fmt.Sprintf("rogue-%d", i)))
			return err
		},
		Refused: func(err error) bool { return errors.Is(err, jwks.ErrUnknownKey) },
		Hits:    func() int { return int(is.keyHits.Load()) },
		Advance: clk.Advance,
		Next:    time.Minute,
		Within:  30 * time.Second,
	})
}

func TestUnknownKidRefreshPicksUpRotatedKey(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	k2 := published{kid: "k2", alg: "ES256", priv: testkeys.New(t, "", jose.ES256).Priv}
	is, clk, c := start(t, nil, k1)
	is.set(func(is *issuer) { is.keys = []published{k1, k2} })

	clk.Advance(10 * time.Second)
	err := refused(t, c, sign(t, k2.priv, jose.ES256, "k2"), jwks.ErrUnknownKey)
	var fetchErr *jwks.FetchError
	if errors.As(err, &fetchErr) {
		t.Errorf("unknown kid after a good download names a failed one: %v", err)
	}

	clk.Advance(50 * time.Second)
	mustVerify(t, c, sign(t, k2.priv, jose.ES256, "k2"))
	mustVerify(t, c, sign(t, k1.priv, jose.RS256, "k1"))
	wantKeyHits(t, is, 2, "")
}

func TestKnownKidFailuresDoNotRefetch(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	is, clk, c := start(t, nil, k1)
	clk.Advance(2 * time.Minute)

	// Another key claiming k1's id: the signature is bad.
	refused(t, c, sign(t, rsaKeys()[1], jose.RS256, "k1"), jwks.ErrBadSignature)
	// k1's own key, but with an algorithm it is not published for.
	refused(t, c, sign(t, k1.priv, jose.PS256, "k1"), jwks.ErrAlgorithmMismatch)
	wantKeyHits(t, is, 1, ": a known kid never triggers a download")
}

func TestNoKidTriesEveryKey(t *testing.T) {
	k1 := published{kid: "k1", alg: "ES256", priv: testkeys.New(t, "", jose.ES256).Priv}
	k2 := published{kid: "k2", priv: rsaKeys()[0]}
	is := newIssuer(t, false, k1, k2)
	clk := clock.NewFake(t0)
	c := newCache(is, clk, nil)
	if key := mustVerify(t, c, sign(t, k2.priv, jose.RS256, "")); key.KeyID != "k2" {
		t.Fatalf("verified by %q", key.KeyID)
	}
	// Without a kid no key matches: a bad signature, after one (paced)
	// download.
	clk.Advance(time.Minute)
	err := refused(t, c, sign(t, rsaKeys()[1], jose.RS256, ""), jwks.ErrBadSignature)
	if errors.Is(err, jwks.ErrAlgorithmMismatch) || errors.Is(err, jwks.ErrUnknownKey) {
		t.Fatalf("err = %v, want only ErrBadSignature", err)
	}
	wantKeyHits(t, is, 2, "")
}

func TestStaleKeysKeptAfterFailedRefresh(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	is, clk, c := start(t, nil, k1)

	is.set(func(is *issuer) { is.keyStatus = http.StatusInternalServerError })
	clk.Advance(time.Hour)
	mustVerify(t, c, sign(t, k1.priv, jose.RS256, "k1"))
	wantKeyHits(t, is, 2, " (a refresh once the keys were old)")
	err := refused(t, c, sign(t, rsaKeys()[1], jose.RS256, "k2"), jwks.ErrUnknownKey)
	var fetchErr *jwks.FetchError
	if !errors.As(err, &fetchErr) || fetchErr.URL != is.keysURL() || !strings.Contains(fetchErr.Error(), "500") {
		t.Fatalf("err = %v, want one naming the failed download", err)
	}
}

func TestMaxAgeDropsWithdrawnKeys(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	k2 := published{kid: "k2", alg: "RS256", priv: rsaKeys()[1]}
	is, clk, c := start(t, func(o *jwks.Options) { o.MaxAge = 10 * time.Minute }, k1)
	is.set(func(is *issuer) { is.keys = []published{k2} })

	clk.Advance(9 * time.Minute)
	mustVerify(t, c, sign(t, k1.priv, jose.RS256, "k1")) // still fresh
	clk.Advance(time.Minute)
	refused(t, c, sign(t, k1.priv, jose.RS256, "k1"), jwks.ErrUnknownKey)
	wantKeyHits(t, is, 2, "")
}

func TestUnavailableUntilFirstDownload(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	is := newIssuer(t, false, k1)
	is.set(func(is *issuer) { is.keyStatus = http.StatusServiceUnavailable })
	clk := clock.NewFake(t0)
	c := newCache(is, clk, nil)

	_, err := c.Keys(context.Background())
	wantErr(t, err, jwks.ErrUnavailable)
	var fetchErr *jwks.FetchError
	if !errors.As(err, &fetchErr) || !strings.Contains(fetchErr.Err.Error(), "503") {
		t.Fatalf("err = %v, want a *FetchError with the status", err)
	}
	// Within RetryInterval nothing is fetched, even though the issuer is
	// back.
	is.set(func(is *issuer) { is.keyStatus = 0 })
	clk.Advance(5 * time.Second)
	refused(t, c, sign(t, k1.priv, jose.RS256, "k1"), jwks.ErrUnavailable)
	wantKeyHits(t, is, 1, " (retry too early)")
	clk.Advance(5 * time.Second)
	mustVerify(t, c, sign(t, k1.priv, jose.RS256, "k1"))
}

func TestConcurrentCallersShareOneDownload(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	is := newIssuer(t, false, k1)
	gate := make(chan struct{})
	is.set(func(is *issuer) { is.gate = gate })
	c := newCache(is, clock.NewFake(t0), nil)

	// A caller that gives up while the first download waits.
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() {
		_, err := c.Keys(ctx)
		gaveUp <- err
	}()
	testenv.Eventually(t, "one key fetch", func() bool { return is.keyHits.Load() == 1 })
	cancel()
	err := <-gaveUp
	if !errors.Is(err, context.Canceled) || !errors.Is(err, jwks.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable and context.Canceled", err)
	}

	// Callers arriving meanwhile join the same download.
	var wg sync.WaitGroup
	jws := sign(t, k1.priv, jose.RS256, "k1")
	for range 50 {
		wg.Go(func() {
			if _, _, err := c.Verify(context.Background(), jws); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	close(gate)
	wg.Wait()
	mustVerify(t, c, jws)
	wantKeyHits(t, is, 1, "")
}

func TestEndorsements(t *testing.T) {
	priv := rsaKeys()[0]
	is := newIssuer(t, false,
		published{kid: "plain", priv: priv},
		published{kid: "teams", priv: priv, extra: map[string]any{"endorsements": []string{"msteams", "webchat"}}},
		published{kid: "nothing", priv: priv, extra: map[string]any{"endorsements": []string{}}},
		published{kid: "garbled", priv: priv, extra: map[string]any{"endorsements": "msteams"}},
	)
	c := newCache(is, clock.NewFake(t0), nil)
	keys, err := c.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byKid := map[string]jwks.Key{}
	for _, k := range keys {
		byKid[k.KeyID] = k
	}
	if _, ok := byKid["garbled"]; ok || len(byKid) != 3 {
		t.Fatalf("keys %v: want plain, teams, nothing (endorsements that are not a list skip the key)", byKid)
	}
	for _, tc := range []struct {
		kid, channel string
		want         bool
	}{
		{"plain", "msteams", true},
		{"plain", "anything", true},
		{"teams", "msteams", true},
		{"teams", "MSTeams", true},
		{"teams", "directline", false},
		{"nothing", "msteams", false},
	} {
		k := byKid[tc.kid]
		if got := k.Endorses(tc.channel); got != tc.want {
			t.Errorf("key %s endorses %q: %v, want %v", tc.kid, tc.channel, got, tc.want)
		}
	}
	// Verify hands back the key, endorsements included.
	if key := mustVerify(t, c, sign(t, priv, jose.RS256, "teams")); !key.Endorsed || key.Endorses("directline") {
		t.Errorf("verified key %+v", key)
	}
}

func TestMetadataNamesTheKeySet(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	is := newIssuer(t, false, k1)
	clk := clock.NewFake(t0)
	c := newCache(is, clk, func(o *jwks.Options) { o.URL, o.MetadataURL = "", is.metadataURL() })
	mustVerify(t, c, sign(t, k1.priv, jose.RS256, "k1"))
	clk.Advance(time.Minute)
	refused(t, c, sign(t, k1.priv, jose.RS256, "rogue"), jwks.ErrUnknownKey)
	// Every download reads the metadata first.
	if m, k := is.metaHits.Load(), is.keyHits.Load(); m != 2 || k != 2 {
		t.Fatalf("metadata fetched %d times, key set %d; want 2, 2", m, k)
	}
}

func TestMetadataWithABadJWKSURI(t *testing.T) {
	for name, tc := range map[string]struct {
		tls     bool
		jwksURI func(is *issuer) string
		want    string
	}{
		"relative":       {false, func(*issuer) string { return "/keys" }, "not an absolute http(s) URL"},
		"another scheme": {false, func(*issuer) string { return "file:///etc/keys" }, "not an absolute http(s) URL"},
		"downgrade":      {true, func(is *issuer) string { return strings.Replace(is.keysURL(), "https:", "http:", 1) }, "downgrades to http"},
	} {
		t.Run(name, func(t *testing.T) {
			is := newIssuer(t, tc.tls, published{kid: "k1", priv: rsaKeys()[0]})
			is.set(func(is *issuer) { is.jwksURI = tc.jwksURI(is) })
			c := newCache(is, clock.NewFake(t0), func(o *jwks.Options) { o.URL, o.MetadataURL = "", is.metadataURL() })
			_, err := c.Keys(context.Background())
			var fetchErr *jwks.FetchError
			if !errors.As(err, &fetchErr) || fetchErr.URL != is.metadataURL() || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *FetchError for the metadata saying %q", err, tc.want)
			}
			if n := is.keyHits.Load(); n != 0 {
				t.Fatalf("the key set was fetched %d times", n)
			}
		})
	}
}

func TestFetchKeepsOnlyUsablePublicKeys(t *testing.T) {
	weak := testkeys.RSA(t, 1024)
	ed := testkeys.New(t, "", jose.EdDSA).Priv
	is := newIssuer(t, false,
		published{kid: "rsa", alg: "RS256", use: "sig", priv: rsaKeys()[0]},
		published{kid: "rsa-no-alg", priv: rsaKeys()[1]},
		published{kid: "ec", alg: "ES256", priv: testkeys.New(t, "", jose.ES256).Priv},
		published{kid: "ed", priv: ed},
		published{kid: "weak", priv: weak},
		published{kid: "enc", use: "enc", priv: rsaKeys()[2]},
		published{kid: "rs512", alg: "RS512", priv: rsaKeys()[2]},
	)
	for _, tc := range []struct {
		algs []string
		want string
	}{
		{[]string{"RS256", "ES256", "PS256", "EdDSA"}, "rsa rsa-no-alg ec ed"},
		{[]string{"RS256", "RS384", "RS512"}, "rsa rsa-no-alg rs512"},
		{[]string{"EdDSA"}, "ed"},
	} {
		keys, err := jwks.Fetch(context.Background(), is.srv.Client(), is.keysURL(), tc.algs)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(testkeys.PublicKeyIDs(t, keys), " "); got != tc.want {
			t.Errorf("algorithms %v: kept %q, want %q", tc.algs, got, tc.want)
		}
	}
}

func TestFetchFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		handler http.HandlerFunc
		want    string
	}{
		"status":   {func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusBadGateway) }, "HTTP 502"},
		"not JSON": {func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, "decoding"},
		"too large": {func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", jwks.MaxDocumentBytes) + `"}`))
		}, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			_, err := jwks.Fetch(context.Background(), srv.Client(), srv.URL, algs)
			var fetchErr *jwks.FetchError
			if !errors.As(err, &fetchErr) || fetchErr.URL != srv.URL || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a *FetchError saying %q", err, tc.want)
			}
		})
	}
}

func TestStaticNeverFetches(t *testing.T) {
	priv := rsaKeys()[0]
	c := jwks.Static(jwks.Key{JSONWebKey: jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "RS256"}})
	mustVerify(t, c, sign(t, priv, jose.RS256, "k1"))
	err := refused(t, c, sign(t, priv, jose.RS256, "k2"), jwks.ErrUnknownKey)
	var fetchErr *jwks.FetchError
	if errors.As(err, &fetchErr) {
		t.Fatalf("a static cache reported a download: %v", err)
	}
}

func TestVerifyTellsWhenTheKeyWasFetched(t *testing.T) {
	k1 := published{kid: "k1", alg: "RS256", priv: rsaKeys()[0]}
	k2 := published{kid: "k2", alg: "RS256", priv: rsaKeys()[1]}
	is, clk, c := start(t, nil, k1)
	if key := mustVerify(t, c, sign(t, k1.priv, jose.RS256, "k1")); !key.FetchedAt.Equal(t0) {
		t.Fatalf("FetchedAt = %s, want the first download's %s", key.FetchedAt, t0)
	}
	is.set(func(is *issuer) { is.keys = []published{k1, k2} })
	clk.Advance(2 * time.Minute)
	if key := mustVerify(t, c, sign(t, k2.priv, jose.RS256, "k2")); !key.FetchedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("FetchedAt = %s, want the refresh's %s", key.FetchedAt, t0.Add(2*time.Minute))
	}
	if key := mustVerify(t, c, sign(t, k1.priv, jose.RS256, "k1")); !key.FetchedAt.Equal(t0.Add(2 * time.Minute)) {
		t.Fatalf("FetchedAt = %s after the refresh, want %s", key.FetchedAt, t0.Add(2*time.Minute))
	}
}
