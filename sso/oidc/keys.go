package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// minRefresh bounds how often an unknown key id makes the RP fetch the
// OP's JWKS again. go-oidc's RemoteKeySet refetches on every miss, which
// would let anyone posting forged logout tokens with random key ids make
// govhub hammer the OP; here a rotation is picked up within minRefresh.
const minRefresh = 30 * time.Second

// keySet is the OP's signing keys, fetched from jwks_uri and cached. It
// satisfies go-oidc's KeySet, so go-oidc's verifier does the claim checks
// over signatures verified here.
type keySet struct {
	url    string
	client *http.Client
	algs   []jose.SignatureAlgorithm
	now    func() time.Time

	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetched time.Time // last fetch attempt (zero: never)
}

var errNoKey = errors.New("oidc: signature verifies with none of the OP's published keys")

// VerifySignature implements go-oidc's KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, k.algs)
	if err != nil {
		return nil, fmt.Errorf("oidc: malformed or disallowed JWT: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("oidc: JWT must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, fresh := k.cached()
	if p, ok := verifyWith(jws, keys, kid); ok {
		return p, nil
	}
	if fresh {
		return nil, errNoKey
	}
	keys, err = k.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if p, ok := verifyWith(jws, keys, kid); ok {
		return p, nil
	}
	return nil, errNoKey
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		key := &keys[i]
		if kid != "" && key.KeyID != kid {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if p, err := jws.Verify(key); err == nil {
			return p, true
		}
	}
	return nil, false
}

// cached returns the cached keys and whether a refresh is not yet allowed.
func (k *keySet) cached() ([]jose.JSONWebKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.recent(k.now())
}

// recent reports whether the last fetch was less than minRefresh ago (a
// clock that went backwards counts as not recent).
func (k *keySet) recent(now time.Time) bool {
	return !k.fetched.IsZero() && now.Sub(k.fetched) < minRefresh && !now.Before(k.fetched)
}

// refresh fetches the JWKS (at most once per minRefresh; concurrent callers
// share the lock, so a burst makes one request).
func (k *keySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.recent(now) {
		return k.keys, nil // another caller just refreshed
	}
	k.fetched = now
	keys, err := fetchJWKS(ctx, k.client, k.url)
	if err != nil {
		return k.keys, err
	}
	k.keys = keys
	return keys, nil
}

// fetchJWKS reads a JWK Set, skipping keys of types go-jose does not know
// (RFC 7517 5: implementations SHOULD ignore JWKs they do not understand).
func fetchJWKS(ctx context.Context, client *http.Client, url string) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("oidc: jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("oidc: jwks: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("oidc: jwks: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("oidc: jwks: %s", resp.Status)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("oidc: jwks: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(r, &k); err != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		keys = append(keys, k)
	}
	return keys, nil
}
