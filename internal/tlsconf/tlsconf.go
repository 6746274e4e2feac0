package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names of the generated pair inside the data directory.
const (
	CertFile = "tls-selfsigned.crt"
	KeyFile  = "tls-selfsigned.key"
)

// Options says where the certificate comes from.
type Options struct {
	// CertFile and KeyFile are PEM files from the config. When both are
	// set they are loaded and nothing is generated.
	CertFile, KeyFile string
	// DataDir receives the self-signed pair when no files are configured.
	DataDir string
	// Hostname is put in the generated certificate's subject and SANs.
	Hostname string
	// Now is the clock for the generated certificate's validity; nil means
	// time.Now.
	Now func() time.Time
}

// validity of a generated certificate. Clients that pin a self-signed
// certificate would have to re-trust it on renewal, so it is long.
const validity = 10 * 365 * 24 * time.Hour

// Load returns a server TLS configuration with TLS 1.2 as the minimum
// version, from the configured files or from the self-signed pair in
// DataDir (generated on first use).
func Load(opts Options) (*tls.Config, error) {
	cert, err := LoadCertificate(opts)
	if err != nil {
		return nil, err
	}
	return ServerConfig(cert), nil
}

// ServerConfig wraps one certificate in a server configuration with TLS
// 1.2 as the minimum version.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
}

// LoadCertificate returns the configured certificate, or the self-signed one
// from DataDir, generating it when it is missing.
func LoadCertificate(opts Options) (tls.Certificate, error) {
	if opts.CertFile != "" || opts.KeyFile != "" {
		if opts.CertFile == "" || opts.KeyFile == "" {
			return tls.Certificate{}, errors.New("tlsconf: both a certificate file and a key file are needed")
		}
		cert, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("tlsconf: load %s: %w", opts.CertFile, err)
		}
		return cert, nil
	}
	if opts.DataDir == "" {
		return tls.Certificate{}, errors.New("tlsconf: no certificate configured and no data directory to generate one in")
	}
	certPath := filepath.Join(opts.DataDir, CertFile)
	keyPath := filepath.Join(opts.DataDir, KeyFile)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		return cert, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return tls.Certificate{}, fmt.Errorf("tlsconf: load generated certificate: %w", err)
	}
	// One or both files are missing: (re)generate both.
	certPEM, keyPEM, err := Generate(opts.Hostname, nowOf(opts))
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("tlsconf: %w", err)
	}
	// Key first: a certificate on disk always has its key beside it.
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func nowOf(opts Options) time.Time {
	if opts.Now != nil {
		return opts.Now()
	}
	return time.Now()
}

// Generate returns a PEM certificate and PKCS#8 PEM key for a self-signed
// ECDSA P-256 pair naming hostname, localhost, 127.0.0.1 and ::1.
func Generate(hostname string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: serial: %w", err)
	}
	if hostname == "" {
		hostname = "localhost"
	}
	dns := []string{hostname}
	if hostname != "localhost" {
		dns = append(dns, "localhost")
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"govhub self-signed"}},
		NotBefore:             now.Add(-time.Hour), // tolerate clients whose clock is a little behind
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: create certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	return certPEM, keyPEM, nil
}

// writeAtomic writes data to a temp file in path's directory with mode
// perm, fsyncs it, renames it over path and fsyncs the directory.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("tlsconf: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("tlsconf: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
