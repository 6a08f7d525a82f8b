package linkflow

import (
	"bytes"
	"strings"
	"testing"

	"github.com/signoff-dev/signoff/oidc/internal/idtoken"
	"github.com/signoff-dev/signoff/storage"
)

func TestTokenSealer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s, err := newTokenSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	link := storage.IdentityLink{Platform: "slack", Workspace: "T1", PlatformUser: "U1", Issuer: "https://idp.example", Subject: "sub-1"}
	const token = "refresh-token-plaintext-value"

	sealed, err := s.seal(token, link)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(token)) || bytes.Contains(sealed, []byte("refresh")) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	if sealed[0] != sealVersion || len(sealed) != 1+12+len(token)+16 {
		t.Fatalf("sealed layout: version %d, %d bytes", sealed[0], len(sealed))
	}
	again, _ := s.seal(token, link)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one token are equal: the nonce is not random")
	}
	got, err := s.open(sealed, link)
	if err != nil || got != token {
		t.Fatalf("open = %q, %v", got, err)
	}

	// Every single-bit change anywhere refuses to open.
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x01
		if _, err := s.open(bad, link); err == nil {
			t.Fatalf("a flipped bit at byte %d still opened", i)
		}
	}
	for _, bad := range [][]byte{nil, sealed[:1], sealed[:12], sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0)} {
		if _, err := s.open(bad, link); err == nil {
			t.Fatalf("%d bytes opened", len(bad))
		}
	}

	// Bound to its link.
	for _, other := range []storage.IdentityLink{
		{Platform: "teams", Workspace: "T1", PlatformUser: "U1", Issuer: link.Issuer, Subject: link.Subject},
		{Platform: "slack", Workspace: "T2", PlatformUser: "U1", Issuer: link.Issuer, Subject: link.Subject},
		{Platform: "slack", Workspace: "T1", PlatformUser: "U2", Issuer: link.Issuer, Subject: link.Subject},
		{Platform: "slack", Workspace: "T1", PlatformUser: "U1", Issuer: "https://other.example", Subject: link.Subject},
		{Platform: "slack", Workspace: "T1", PlatformUser: "U1", Issuer: link.Issuer, Subject: "sub-2"},
		// Field boundaries matter: "T1"+"U1" is not "T"+"1U1".
		{Platform: "slack", Workspace: "T", PlatformUser: "1U1", Issuer: link.Issuer, Subject: link.Subject},
	} {
		if _, err := s.open(sealed, other); err == nil {
			t.Fatalf("token sealed for %+v opened for %+v", link, other)
		}
	}

	// Another key does not open it; the error says what to check and
	// holds no secret.
	s2, _ := newTokenSealer([]byte("another-key-0123456789abcdef-0123"))
	_, err = s2.open(sealed, link)
	if err == nil {
		t.Fatal("another key opened the token")
	}
	if !strings.Contains(err.Error(), "token_encryption_key") || strings.Contains(err.Error(), string(key)) {
		t.Fatalf("error = %v", err)
	}

	if _, err := newTokenSealer([]byte("too short")); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("short key: %v", err)
	}
}

func TestValidToken(t *testing.T) {
	tok, err := idtoken.RandomToken()
	if err != nil {
		t.Fatal(err)
	}
	if !idtoken.ValidToken(tok) {
		t.Fatalf("randomToken %q is not validToken", tok)
	}
	for _, bad := range []string{"", "abc", tok + "x", tok[:42] + "=", tok[:42] + ".", tok[:42] + "/"} {
		if idtoken.ValidToken(bad) {
			t.Fatalf("validToken(%q) = true", bad)
		}
	}
}

func TestRequestedScopes(t *testing.T) {
	got := requestedScopes([]string{"email", "openid", "groups", "offline_access", "email", ""}, true)
	if strings.Join(got, " ") != "openid email groups offline_access" {
		t.Fatalf("scopes = %v", got)
	}
	got = requestedScopes([]string{"openid", "offline_access", "groups"}, false)
	if strings.Join(got, " ") != "openid groups" {
		t.Fatalf("scopes without a token key = %v", got)
	}
}
