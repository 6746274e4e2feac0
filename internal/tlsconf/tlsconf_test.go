package tlsconf

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGenerateOnFirstStartAndReuse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	opts := Options{DataDir: dir, Hostname: "mail.example.gov.cn"}
	cfg, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v, want 0600", st.Mode().Perm())
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if pk, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pk.Curve != elliptic.P256() {
		t.Fatalf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	for _, name := range []string{"mail.example.gov.cn", "localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not name %s: %v", name, err)
		}
	}
	// No temp files left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("data dir has %d entries, want 2", len(ents))
	}

	// A second start reuses the pair.
	cfg2, err := Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cfg.Certificates[0].Certificate[0], cfg2.Certificates[0].Certificate[0]) {
		t.Fatal("second start generated a new certificate")
	}
}

func TestMissingKeyRegeneratesBoth(t *testing.T) {
	dir := t.TempDir()
	opts := Options{DataDir: dir, Hostname: "mx.test"}
	c1, err := LoadCertificate(opts)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, KeyFile))
	c2, err := LoadCertificate(opts)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Fatal("certificate kept without its key")
	}
}

func TestLoadFromFiles(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := Generate("files.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cp, kp := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(cp, certPEM, 0o644)
	os.WriteFile(kp, keyPEM, 0o600)
	gen := filepath.Join(dir, "gen")
	cfg, err := Load(Options{CertFile: cp, KeyFile: kp, DataDir: gen})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if leaf.Subject.CommonName != "files.test" {
		t.Fatalf("CN %q", leaf.Subject.CommonName)
	}
	if _, err := os.Stat(gen); !os.IsNotExist(err) {
		t.Fatal("generated a pair although files were configured")
	}
	if _, err := Load(Options{CertFile: cp}); err == nil {
		t.Fatal("certificate without key accepted")
	}
	if _, err := Load(Options{CertFile: cp, KeyFile: filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("missing key file accepted")
	}
}

// TestHandshake: a client trusting the generated certificate completes a
// TLS 1.2+ handshake against 127.0.0.1 and refuses TLS 1.1.
func TestHandshake(t *testing.T) {
	dir := t.TempDir()
	cfg, err := Load(Options{DataDir: dir, Hostname: "mx.test"})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(filepath.Join(dir, CertFile))
	pool.AppendCertsFromPEM(pemBytes)
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("verified handshake: %v", err)
	}
	c.Close()
	_, err = tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10})
	if err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}
