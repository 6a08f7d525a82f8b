package attest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// FetchKeySet reads a signoff server's published keys: its discovery
// document at server + DiscoveryPath, then the key set at the document's
// jwks_uri. server is the server's base URL (its public_url). client is
// http.DefaultClient when nil; bound the call with ctx.
//
// The discovery document's issuer is what the attestations of that server
// carry as iss: pass it as Expected.Issuer. It need not equal server (a
// relying party may reach signoff by another address than its
// public_url), so it says only what the server you chose to trust says;
// where that matters, pin the issuer yourself (signoff attest verify
// --issuer).
func FetchKeySet(ctx context.Context, client *http.Client, server string) (*KeySet, Discovery, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base, err := issuerURL(server)
	if err != nil {
		return nil, Discovery{}, fmt.Errorf("server %q: an absolute http(s) URL, e.g. https://signoff.example.com", server)
	}
	var d Discovery
	body, err := get(ctx, client, base+DiscoveryPath)
	if err != nil {
		return nil, Discovery{}, err
	}
	if err := json.Unmarshal(body, &d); err != nil || d.Issuer == "" || d.JWKSURI == "" {
		return nil, Discovery{}, fmt.Errorf("%s%s is not an OpenID discovery document with issuer and jwks_uri: is %s a signoff server that signs attestations?", base, DiscoveryPath, base)
	}
	if u, err := url.Parse(d.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, Discovery{}, fmt.Errorf("the discovery document's jwks_uri %q is not an http(s) URL", truncate(d.JWKSURI, 200))
	}
	d.Issuer = strings.TrimSuffix(d.Issuer, "/")
	body, err = get(ctx, client, d.JWKSURI)
	if err != nil {
		return nil, Discovery{}, err
	}
	ks, err := ParseKeySet(body)
	if err != nil {
		return nil, Discovery{}, fmt.Errorf("%s: %w", d.JWKSURI, err)
	}
	return ks, d, nil
}

func get(ctx context.Context, client *http.Client, target string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", target, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", target, resp.Status)
	}
	if len(body) > maxKeySetBytes {
		return nil, fmt.Errorf("GET %s: the answer is over %d bytes", target, maxKeySetBytes)
	}
	return body, nil
}
