package queue

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/emersion/go-msgauth/dkim"
)

// dkimKeys holds one RSA key per signing domain in a directory, created on
// first use.
type dkimKeys struct {
	dir      string
	selector string
	mu       sync.Mutex
	keys     map[string]*dkimKey
}

type dkimKey struct {
	signer crypto.Signer
	pub    []byte // PKIX DER of the public key
}

// dkimHeaders are the fields signed (RFC 6376 5.4.1's recommended set).
// From is listed twice so that a From added in transit breaks the signature
// (RFC 6376 8.15, over-signing).
var dkimHeaders = []string{"From", "From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
	"Reply-To", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Auto-Submitted"}

// validKeyDomain refuses names that could escape the key directory.
func validKeyDomain(d string) error {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
		return fmt.Errorf("queue: bad DKIM domain %q", d)
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("queue: bad DKIM domain %q", d)
		}
	}
	return nil
}

// key returns domain's key, loading it from <dir>/<domain>.pem or, when the
// file does not exist, generating an RSA 2048 key and writing it there.
// The file is written atomically and never overwritten (a hard link of a
// fsynced temp file), so two processes generating at once agree on the
// first key written and never sign with a key that was then replaced.
func (k *dkimKeys) key(domain string) (*dkimKey, error) {
	if err := validKeyDomain(domain); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.keys[domain]; ok {
		return key, nil
	}
	path := filepath.Join(k.dir, domain+".pem")
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		data, err = k.generate(path)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: DKIM key for %s: %w", domain, err)
	}
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("queue: DKIM key %s: %w", path, err)
	}
	k.keys[domain] = key
	return key, nil
}

func (k *dkimKeys) generate(path string) ([]byte, error) {
	if err := os.MkdirAll(k.dir, 0o700); err != nil {
		return nil, err
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	f, err := os.CreateTemp(k.dir, ".dkim-*.tmp")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return os.ReadFile(path) // another process won
		}
		return nil, err
	}
	if d, err := os.Open(k.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return data, nil
}

func parseKey(data []byte) (*dkimKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	var priv any
	var err error
	switch b.Type {
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	if _, ok := signer.Public().(*rsa.PublicKey); !ok {
		return nil, errors.New("not an RSA key")
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return nil, err
	}
	return &dkimKey{signer: signer, pub: pub}, nil
}

// DKIMRecord returns the DNS TXT record the administrator must publish for
// domain (RFC 6376 3.6.1): its name, <selector>._domainkey.<domain>, and
// its value, "v=DKIM1; k=rsa; p=...". It generates the domain's key if there
// is none yet.
func (q *Queue) DKIMRecord(domain string) (name, value string, err error) {
	if q.dkim == nil {
		return "", "", errors.New("queue: DKIM signing is not configured (no key directory)")
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	key, err := q.dkim.key(domain)
	if err != nil {
		return "", "", err
	}
	return q.cfg.DKIMSelector + "._domainkey." + domain, "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(key.pub), nil
}

// sign returns raw with a DKIM-Signature for domain prepended.
func (q *Queue) sign(domain string, raw []byte) ([]byte, error) {
	key, err := q.dkim.key(domain)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	err = dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{
		Domain:                 domain,
		Selector:               q.cfg.DKIMSelector,
		Signer:                 key.signer,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             dkimHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: DKIM sign: %w", err)
	}
	return out.Bytes(), nil
}
