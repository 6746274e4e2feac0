package saml

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/govhub/govhub/sso"
)

// Config configures one SAML service provider (one IdP).
type Config struct {
	// Name is the provider's configured name: it appears in URLs
	// (/sso/saml/<Name>/...), sessions and audit entries. Letters, digits,
	// '-' and '_' only.
	Name string
	// Label is the sign-in button text ("政务门户"); default Name.
	Label string
	// PublicURL is the site's external origin (https://host[:port]). The
	// ACS is PublicURL+"/sso/saml/"+Name+"/acs".
	PublicURL string
	// EntityID is our SAML entity id; default
	// PublicURL+"/sso/saml/"+Name+"/metadata" (the metadata URL).
	EntityID string
	// IDPMetadataFile or IDPMetadataURL is where the IdP's metadata comes
	// from (exactly one). Its signing certificates are the only keys an
	// assertion may be signed with.
	IDPMetadataFile string
	IDPMetadataURL  string
	// MetadataRefresh is how often Run re-reads the IdP metadata, so a
	// certificate rollover announced there is picked up (default 1h).
	MetadataRefresh time.Duration
	// IDPInitiated accepts unsolicited responses (no InResponseTo). Off by
	// default: an unsolicited response is bound to no browser.
	IDPInitiated bool
	// ClockSkew is how far the IdP's clock may be from ours when
	// NotBefore and NotOnOrAfter are checked (default 2m).
	ClockSkew time.Duration
	// KeyFile and CertFile are our signing key and certificate (PEM). When
	// both are empty, a key is generated once and kept in KeyDir
	// (saml-<Name>.key, saml-<Name>.crt); every node must then share the
	// directory, or be given the files.
	KeyFile, CertFile string
	KeyDir            string
	// HTTPClient fetches IDPMetadataURL (default: 30s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) defaults() error {
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("saml: provider name %q: use letters, digits, '-' or '_'", c.Name)
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("saml %s: public_url %q must be an origin like https://mail.example.gov.cn", c.Name, c.PublicURL)
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.Label == "" {
		c.Label = c.Name
	}
	if c.EntityID == "" {
		c.EntityID = c.base() + "/metadata"
	}
	if (c.IDPMetadataFile == "") == (c.IDPMetadataURL == "") {
		return fmt.Errorf("saml %s: set exactly one of idp_metadata_file and idp_metadata_url", c.Name)
	}
	if c.IDPMetadataURL != "" {
		mu, err := url.Parse(c.IDPMetadataURL)
		// The metadata decides which keys are trusted: fetching it over
		// plain HTTP would let anyone on the path sign assertions.
		if err != nil || mu.Scheme != "https" || mu.Host == "" {
			return fmt.Errorf("saml %s: idp_metadata_url %q must be an https URL (or use idp_metadata_file)", c.Name, c.IDPMetadataURL)
		}
	}
	if c.MetadataRefresh <= 0 {
		c.MetadataRefresh = time.Hour
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = 2 * time.Minute
	}
	if (c.KeyFile == "") != (c.CertFile == "") {
		return fmt.Errorf("saml %s: set both key_file and cert_file, or neither", c.Name)
	}
	if c.KeyFile == "" && c.KeyDir == "" {
		return fmt.Errorf("saml %s: no key_file/cert_file and no key_dir to keep a generated key in", c.Name)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// base is the external URL of this provider's endpoints.
func (c *Config) base() string { return c.PublicURL + "/sso/saml/" + c.Name }

// ACSURL is where the IdP posts responses.
func (c *Config) ACSURL() string { return c.base() + "/acs" }

// SLOURL is our single-logout endpoint.
func (c *Config) SLOURL() string { return c.base() + "/slo" }

// SP is a SAML 2.0 service provider for one IdP. It satisfies
// sso.Provider, sso.Logouter and sso.Describer.
type SP struct {
	m    *sso.Manager
	cfg  Config
	log  *slog.Logger
	key  crypto.Signer
	cert *x509.Certificate
	acs  url.URL

	refreshMu sync.Mutex // one metadata refresh at a time
	idp       atomic.Pointer[idpState]
}

var (
	_ sso.Provider  = (*SP)(nil)
	_ sso.Logouter  = (*SP)(nil)
	_ sso.Describer = (*SP)(nil)
)

// idpState is one reading of the IdP's metadata; it is replaced whole on
// refresh so a request sees one consistent set of keys and endpoints.
type idpState struct {
	md     *saml.EntityDescriptor
	certs  []*x509.Certificate // pinned signing certificates
	loaded time.Time
	digest string // SHA-256 of the metadata document, to log changes
	sloURL string // HTTP-Redirect SingleLogoutService, "" if none
	ssoURL string // HTTP-Redirect SingleSignOnService
}

// New loads our key (generating it on first use), reads the IdP metadata
// and returns the provider. It fails when the metadata cannot be read or
// names no signing certificate: a provider that could accept nothing is a
// configuration error, not a runtime surprise.
func New(ctx context.Context, m *sso.Manager, cfg Config) (*SP, error) {
	if m == nil {
		return nil, errors.New("saml: New needs a Manager")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	sp := &SP{m: m, cfg: cfg, log: cfg.Logger.With("component", "saml", "provider", cfg.Name)}
	acs, _ := url.Parse(cfg.ACSURL())
	sp.acs = *acs
	var err error
	if cfg.KeyFile != "" {
		sp.key, sp.cert, err = loadKeyPair(cfg.KeyFile, cfg.CertFile)
	} else {
		sp.key, sp.cert, err = keyInDir(cfg.KeyDir, cfg.Name, cfg.EntityID, m.Now())
	}
	if err != nil {
		return nil, fmt.Errorf("saml %s: %w", cfg.Name, err)
	}
	if err := sp.Refresh(ctx); err != nil {
		return nil, err
	}
	return sp, nil
}

// Name implements sso.Provider.
func (sp *SP) Name() string { return sp.cfg.Name }

// Type implements sso.Provider.
func (sp *SP) Type() string { return "saml" }

// LoginPath implements sso.Provider.
func (sp *SP) LoginPath(relay string) string {
	p := "/sso/saml/" + sp.cfg.Name + "/login"
	if r := sso.SafeRelay(relay); r != "" {
		p += "?relay=" + url.QueryEscape(r)
	}
	return p
}

// EntityID is our entity id.
func (sp *SP) EntityID() string { return sp.cfg.EntityID }

// Describe implements sso.Describer (`govhub sso list`).
func (sp *SP) Describe() map[string]string {
	d := map[string]string{
		"label":           sp.cfg.Label,
		"type":            "saml",
		"entity_id":       sp.cfg.EntityID,
		"acs":             sp.cfg.ACSURL(),
		"slo":             sp.cfg.SLOURL(),
		"metadata":        sp.cfg.base() + "/metadata",
		"sp_cert_sha256":  fingerprint(sp.cert),
		"idp_initiated":   fmt.Sprint(sp.cfg.IDPInitiated),
		"metadata_source": sp.source(),
	}
	if st := sp.idp.Load(); st != nil {
		d["idp_entity_id"] = st.md.EntityID
		fps := make([]string, len(st.certs))
		ends := make([]string, len(st.certs))
		for i, c := range st.certs {
			fps[i] = fingerprint(c)
			ends[i] = c.NotAfter.UTC().Format(time.RFC3339)
		}
		d["idp_cert_sha256"] = strings.Join(fps, ",")
		d["idp_cert_not_after"] = strings.Join(ends, ",")
		d["idp_sso"] = st.ssoURL
		d["idp_slo"] = st.sloURL
		d["metadata_loaded"] = st.loaded.UTC().Format(time.RFC3339)
	}
	return d
}

func (sp *SP) source() string {
	if sp.cfg.IDPMetadataURL != "" {
		return sp.cfg.IDPMetadataURL
	}
	return "file:" + sp.cfg.IDPMetadataFile
}

// fingerprint is the SHA-256 of a certificate's DER, hex with colons, as
// IdP consoles show it.
func fingerprint(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	h := sha256.Sum256(c.Raw)
	s := strings.ToUpper(hex.EncodeToString(h[:]))
	var b strings.Builder
	for i := 0; i < len(s); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(s[i : i+2])
	}
	return b.String()
}

// maxMetadata bounds an IdP metadata document (federation aggregates are
// not supported: one IdP per provider).
const maxMetadata = 4 << 20

// Refresh re-reads the IdP metadata. On failure the metadata already in
// use stays in use (an unreachable metadata URL must not stop sign-in)
// and the error is returned.
func (sp *SP) Refresh(ctx context.Context) error {
	sp.refreshMu.Lock()
	defer sp.refreshMu.Unlock()
	raw, err := sp.readMetadata(ctx)
	if err != nil {
		return fmt.Errorf("saml %s: idp metadata from %s: %w", sp.cfg.Name, sp.source(), err)
	}
	st, err := parseIDPMetadata(raw, sp.m.Now())
	if err != nil {
		return fmt.Errorf("saml %s: idp metadata from %s: %w", sp.cfg.Name, sp.source(), err)
	}
	if vu := st.md.ValidUntil; !vu.IsZero() && vu.Before(sp.m.Now()) {
		// saml-metadata 4.3.1 says expired metadata should not be relied
		// on; refusing every sign-in would be worse, so it is used and
		// the operator warned.
		sp.log.Warn("idp metadata has expired; ask the IdP for fresh metadata", "valid_until", vu)
	}
	old := sp.idp.Load()
	sp.idp.Store(st)
	if old == nil || old.digest != st.digest {
		fps := make([]string, len(st.certs))
		for i, c := range st.certs {
			fps[i] = fingerprint(c)
		}
		sp.log.Info("idp metadata loaded", "idp", st.md.EntityID, "signing_certs", strings.Join(fps, ","), "source", sp.source())
	}
	return nil
}

func (sp *SP) readMetadata(ctx context.Context) ([]byte, error) {
	if sp.cfg.IDPMetadataFile != "" {
		f, err := os.Open(sp.cfg.IDPMetadataFile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readLimited(f)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sp.cfg.IDPMetadataURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := sp.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	return readLimited(resp.Body)
}

func readLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxMetadata+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadata {
		return nil, fmt.Errorf("metadata larger than %d bytes", maxMetadata)
	}
	return b, nil
}

// Run re-reads the IdP metadata every MetadataRefresh until ctx ends. A
// failed refresh is logged and retried at the next tick.
func (sp *SP) Run(ctx context.Context) error {
	t := time.NewTicker(sp.cfg.MetadataRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := sp.Refresh(ctx); err != nil && ctx.Err() == nil {
				sp.log.Warn("idp metadata refresh failed; keeping the previous metadata", "err", err)
			}
		}
	}
}

// parseIDPMetadata reads one IdP's metadata: an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one entity with an IDPSSODescriptor.
func parseIDPMetadata(raw []byte, now time.Time) (*idpState, error) {
	md, err := decodeIDPEntity(raw)
	if err != nil {
		return nil, err
	}
	if md.EntityID == "" {
		return nil, errors.New("the metadata names no entityID")
	}
	certs, err := idpSigningCerts(md)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(raw)
	st := &idpState{md: md, certs: certs, loaded: now, digest: hex.EncodeToString(h[:])}
	for _, d := range md.IDPSSODescriptors {
		for _, e := range d.SingleSignOnServices {
			if e.Binding == saml.HTTPRedirectBinding && st.ssoURL == "" {
				st.ssoURL = strings.TrimSpace(e.Location)
			}
		}
		for _, e := range d.SingleLogoutServices {
			if e.Binding == saml.HTTPRedirectBinding && st.sloURL == "" {
				st.sloURL = strings.TrimSpace(e.Location)
			}
		}
	}
	if st.ssoURL == "" {
		return nil, errors.New("the IdP offers no HTTP-Redirect SingleSignOnService")
	}
	return st, nil
}

func decodeIDPEntity(raw []byte) (*saml.EntityDescriptor, error) {
	dec := xml.NewDecoder(strings.NewReader(string(raw)))
	var root xml.StartElement
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not SAML metadata: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se
			break
		}
	}
	const mdNS = "urn:oasis:names:tc:SAML:2.0:metadata"
	switch {
	case root.Name.Space == mdNS && root.Name.Local == "EntityDescriptor":
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(raw, &ed); err != nil {
			return nil, fmt.Errorf("bad EntityDescriptor: %w", err)
		}
		if len(ed.IDPSSODescriptors) == 0 {
			return nil, errors.New("the entity has no IDPSSODescriptor")
		}
		return &ed, nil
	case root.Name.Space == mdNS && root.Name.Local == "EntitiesDescriptor":
		var es saml.EntitiesDescriptor
		if err := xml.Unmarshal(raw, &es); err != nil {
			return nil, fmt.Errorf("bad EntitiesDescriptor: %w", err)
		}
		var found []saml.EntityDescriptor
		var walk func(e *saml.EntitiesDescriptor)
		walk = func(e *saml.EntitiesDescriptor) {
			for _, ed := range e.EntityDescriptors {
				if len(ed.IDPSSODescriptors) > 0 {
					found = append(found, ed)
				}
			}
			for i := range e.EntitiesDescriptors {
				walk(&e.EntitiesDescriptors[i])
			}
		}
		walk(&es)
		if len(found) != 1 {
			return nil, fmt.Errorf("the EntitiesDescriptor holds %d identity providers; give the metadata of exactly one", len(found))
		}
		return &found[0], nil
	}
	return nil, fmt.Errorf("not SAML metadata: root element is %s", root.Name.Local)
}

// idpSigningCerts are the certificates of the IdP's KeyDescriptors for
// signing (use="signing" or no use). They are pinned: nothing else, not a
// certificate carried in a response's KeyInfo, is trusted.
func idpSigningCerts(md *saml.EntityDescriptor) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	seen := map[string]bool{}
	for _, d := range md.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, xc := range kd.KeyInfo.X509Data.X509Certificates {
				data := strings.Map(func(r rune) rune {
					if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
						return -1
					}
					return r
				}, xc.Data)
				der, err := base64.StdEncoding.DecodeString(data)
				if err != nil {
					return nil, fmt.Errorf("signing certificate: bad base64: %w", err)
				}
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return nil, fmt.Errorf("signing certificate: %w", err)
				}
				if !seen[string(c.Raw)] {
					seen[string(c.Raw)] = true
					out = append(out, c)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the IdP metadata names no signing certificate")
	}
	return out, nil
}

// provider returns a crewjam ServiceProvider for one request: a copy
// holding the current IdP metadata and a clock frozen at now, so every
// time check in one request agrees with the Manager's clock.
func (sp *SP) provider(now time.Time) (*saml.ServiceProvider, *idpState) {
	st := sp.idp.Load()
	slo, _ := url.Parse(sp.cfg.SLOURL())
	md, _ := url.Parse(sp.cfg.base() + "/metadata")
	// AuthnRequests are signed when the IdP asks for it (its metadata's
	// WantAuthnRequestsSigned); logout messages always are, as the single
	// logout profile requires (saml-profiles 4.4.3.1, 4.4.3.4).
	authnSig := ""
	for _, d := range st.md.IDPSSODescriptors {
		if d.WantAuthnRequestsSigned != nil && *d.WantAuthnRequestsSigned {
			authnSig = dsig.RSASHA256SignatureMethod
		}
	}
	return &saml.ServiceProvider{
		EntityID:                         sp.cfg.EntityID,
		Key:                              sp.key,
		Certificate:                      sp.cert,
		MetadataURL:                      *md,
		AcsURL:                           sp.acs,
		SloURL:                           *slo,
		IDPMetadata:                      st.md,
		AuthnNameIDFormat:                saml.UnspecifiedNameIDFormat,
		AllowIDPInitiated:                sp.cfg.IDPInitiated,
		SignatureMethod:                  authnSig,
		LogoutSignatureMethod:            dsig.RSASHA256SignatureMethod,
		LogoutBindings:                   []string{saml.HTTPRedirectBinding, saml.HTTPPostBinding},
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		MetadataOmitValidUntil:           true,
		RejectSHA1Signatures:             true,
		Clock:                            dsig.NewFakeClockAt(now),
	}, st
}

// loadKeyPair reads a PEM key (PKCS#1 or PKCS#8, RSA) and certificate.
func loadKeyPair(keyFile, certFile string) (crypto.Signer, *x509.Certificate, error) {
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	return parseKeyPair(kb, cb)
}

func parseKeyPair(kb, cb []byte) (crypto.Signer, *x509.Certificate, error) {
	kp, _ := pem.Decode(kb)
	if kp == nil {
		return nil, nil, errors.New("key: no PEM block")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(kp.Bytes); err == nil {
		key = k
	} else if k8, err := x509.ParsePKCS8PrivateKey(kp.Bytes); err == nil {
		rk, ok := k8.(*rsa.PrivateKey)
		if !ok {
			return nil, nil, errors.New("key: only RSA keys are supported (IdPs expect RSA-SHA256)")
		}
		key = rk
	} else {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	cp, _ := pem.Decode(cb)
	if cp == nil {
		return nil, nil, errors.New("certificate: no PEM block")
	}
	cert, err := x509.ParseCertificate(cp.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("the certificate is not for the key")
	}
	return key, cert, nil
}

// keyInDir returns the key pair kept in dir for provider name, generating
// it the first time (RSA-2048, self-signed for 10 years: IdPs pin the
// certificate from our metadata, so its CA does not matter). The files are
// created exclusively, so two processes starting together keep one pair.
func keyInDir(dir, name, entityID string, now time.Time) (crypto.Signer, *x509.Certificate, error) {
	keyPath := filepath.Join(dir, "saml-"+name+".key")
	certPath := filepath.Join(dir, "saml-"+name+".crt")
	if k, c, err := loadKeyPair(keyPath, certPath); err == nil {
		return k, c, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("key in %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	cn := entityID
	if u, err := url.Parse(entityID); err == nil && u.Host != "" {
		cn = u.Hostname()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"govhub SAML SP " + name}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kpem := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cpem := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Certificate first, key last: a reader that finds the key finds a
	// complete pair.
	if err := writeExclusive(certPath, cpem, 0o644); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return waitForPair(keyPath, certPath)
		}
		return nil, nil, err
	}
	if err := writeExclusive(keyPath, kpem, 0o600); err != nil {
		return nil, nil, err
	}
	return parseKeyPair(kpem, cpem)
}

// waitForPair waits briefly for another process that is writing the pair.
func waitForPair(keyPath, certPath string) (crypto.Signer, *x509.Certificate, error) {
	var err error
	for i := 0; i < 50; i++ {
		var k crypto.Signer
		var c *x509.Certificate
		if k, c, err = loadKeyPair(keyPath, certPath); err == nil {
			return k, c, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, nil, err
}

func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
