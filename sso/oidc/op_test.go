package oidc

// The test OpenID provider: zitadel's op package (a real OP: discovery,
// authorize, token, userinfo, end_session, JWKS) over zitadel's example
// in-memory storage, with what the tests need on top: a signing key that
// can be rotated, our post-logout redirect registered, a login page a
// programmatic browser fills in, and a hook that rewrites the ID token in
// token responses (an attacker between the RP and a compromised or
// impersonated OP).

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

const (
	testClientID     = "govhub-mail"
	testClientSecret = "s3cret-for-govhub-tests-0123456789abcdef"
	testUserID       = "u-1001"
	testUsername     = "zhangwei"
	testPassword     = "正确的密码-correct"
	testEmail        = "zhang.wei@gov.example.cn"
)

// users is the OP's user directory (storage.UserStore).
type users map[string]*storage.User

func (u users) GetUserByID(id string) *storage.User { return u[id] }
func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u users) ExampleClientID() string { return "service" }

type sigKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k sigKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k sigKey) Key() any                                    { return k.key }
func (k sigKey) ID() string                                  { return k.id }

type pubKey struct{ sigKey }

func (k pubKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k pubKey) Use() string                        { return "sig" }
func (k pubKey) Key() any                           { return &k.key.PublicKey }

// opClient registers our post_logout_redirect_uri, which the example
// client cannot.
type opClient struct {
	op.Client
	postLogout []string
}

func (c opClient) PostLogoutRedirectURIs() []string { return c.postLogout }

// opStorage is the example storage with a rotatable signing key.
type opStorage struct {
	*storage.Storage
	postLogout []string

	mu  sync.Mutex
	cur sigKey
	gen int
}

func (s *opStorage) current() sigKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// rotate makes a new key current and drops the old one from the JWKS, as
// an OP does once the old key's tokens have expired.
func (s *opStorage) rotate(t testing.TB) sigKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.cur = sigKey{id: fmt.Sprintf("op-key-%d", s.gen), key: k}
	return s.cur
}

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) { return s.current(), nil }
func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{pubKey{s.current()}}, nil
}
func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return opClient{Client: c, postLogout: s.postLogout}, nil
}

type testOP struct {
	srv      *httptest.Server
	issuer   string
	store    *opStorage
	provider *op.Provider

	mu     sync.Mutex
	tamper func(idToken string) string
}

// setTamper rewrites the id_token of every token response until reset
// with nil.
func (o *testOP) setTamper(f func(string) string) {
	o.mu.Lock()
	o.tamper = f
	o.mu.Unlock()
}

func (o *testOP) getTamper() func(string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.tamper
}

const opLoginPath = "/login/username"

// newTestOP starts the OP on an httptest TLS server, with govhub
// registered as a confidential web client.
func newTestOP(t *testing.T, redirectURI, postLogoutURI string) *testOP {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "https://" + srv.Listener.Addr().String()
	client := storage.WebClient(testClientID, testClientSecret, redirectURI)
	st := storage.NewStorageWithClients(users{testUserID: {
		ID: testUserID, Username: testUsername, Password: testPassword,
		FirstName: "伟", LastName: "张", Email: testEmail, EmailVerified: true,
		PreferredLanguage: language.SimplifiedChinese,
	}}, map[string]*storage.Client{testClientID: client})
	o := &testOP{srv: srv, issuer: issuer, store: &opStorage{Storage: st, postLogout: []string{postLogoutURI}}}
	o.store.rotate(t)
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:])
	p, err := op.NewProvider(&op.Config{
		CryptoKey:                         cryptoKey,
		DefaultLogoutRedirectURI:          "/logged-out",
		CodeMethodS256:                    true,
		AuthMethodPost:                    true,
		SupportedUILocales:                []language.Tag{language.SimplifiedChinese, language.English},
		BackChannelLogoutSupported:        true,
		BackChannelLogoutSessionSupported: true,
	}, o.store, op.StaticIssuer(issuer), op.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	o.provider = p
	callback := op.AuthCallbackURL(p)
	login := op.NewIssuerInterceptor(p.IssuerFromRequest).HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<form method="post" action="%s"><input type="hidden" name="id" value="%s">
<input name="username"><input name="password" type="password"><button>登录</button></form>`,
				opLoginPath, html.EscapeString(r.URL.Query().Get("authRequestID")))
			return
		}
		id := r.PostFormValue("id")
		if err := o.store.CheckUsernamePassword(r.PostFormValue("username"), r.PostFormValue("password"), id); err != nil {
			http.Error(w, "用户名或密码错误 wrong username or password", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	})
	mux := http.NewServeMux()
	mux.Handle(opLoginPath, login)
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		f := o.getTamper()
		if f == nil {
			p.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK {
			var m map[string]any
			if err := json.Unmarshal(body, &m); err == nil {
				if raw, ok := m["id_token"].(string); ok {
					m["id_token"] = f(raw)
				}
				body, _ = json.Marshal(m)
			}
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
	mux.Handle("/", p)
	srv.Config.Handler = mux
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return o
}

// postToken is a token request made by hand (not through the RP), to see
// what the OP itself enforces.
func (o *testOP) postToken(t *testing.T, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, o.issuer+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testClientID, testClientSecret)
	resp, err := o.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
