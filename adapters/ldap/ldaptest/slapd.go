// Package ldaptest starts a real OpenLDAP slapd (Debian's slapd package)
// for tests: a fresh cn=config and mdb database in a temporary directory,
// suffix dc=gov,dc=example, the syncprov overlay with a session log (so
// RFC 4533 refreshOnly reports deletions as syncIdSets), listening on a
// free loopback port, killed at the end of the test.
package ldaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	Suffix   = "dc=gov,dc=example"
	RootDN   = "cn=admin,dc=gov,dc=example"
	RootPW   = "root-secret"
	ReaderDN = "cn=reader,dc=gov,dc=example"
	ReaderPW = "reader-secret"
	// ReaderSizeLimit is the size limit for ReaderDN outside paged
	// results: a search of more entries fails unless it pages (RFC 2696).
	ReaderSizeLimit = 5
)

// Server is a running slapd.
type Server struct {
	URL string
	// LDAPSURL and CAFile are set with Options.TLS.
	LDAPSURL string
	CAFile   string
	Dir      string
	cmd      *exec.Cmd
}

func find(t testing.TB, name string) string {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: CI must install Debian's slapd and ldap-utils", name)
	}
	t.Skipf("%s not found (apt-get install slapd ldap-utils); skipped outside CI", name)
	return ""
}

// Tool returns the path of an OpenLDAP tool (ldapsearch, ldapmodify...),
// failing under CI=true and skipping elsewhere when it is missing.
func Tool(t testing.TB, name string) string { return find(t, name) }

func config(dir string, sessionlog, tls bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %[1]s/slapd.pid
`, dir)
	if tls {
		fmt.Fprintf(&b, "olcTLSCertificateFile: %[1]s/cert.pem\nolcTLSCertificateKeyFile: %[1]s/key.pem\n", dir)
	}
	fmt.Fprintf(&b, `

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: syncprov

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %[2]s
olcRootDN: %[3]s
olcRootPW: %[4]s
olcDbDirectory: %[1]s/db
olcDbMaxSize: 8589934592
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: entryUUID,entryCSN eq
olcDbIndex: uid,mail,employeeNumber eq
olcLimits: {0}dn.exact="%[5]s" size.soft=%[6]d size.hard=%[6]d size.prtotal=unlimited
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by * read

`, dir, Suffix, RootDN, RootPW, ReaderDN, ReaderSizeLimit)
	fmt.Fprintf(&b, `dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {0}syncprov
`)
	if sessionlog {
		b.WriteString("olcSpSessionlog: 10000\n")
	}
	return b.String()
}

// Options shape the server.
type Options struct {
	// LDIF is loaded with slapadd before start (entries under Suffix; the
	// suffix entry and ReaderDN are added by Start).
	LDIF string
	// NoSessionLog leaves syncprov without a session log.
	NoSessionLog bool
	// TLS gives slapd a certificate for 127.0.0.1 from a fresh CA
	// (Server.CAFile), offers StartTLS and listens on LDAPSURL too.
	TLS bool
}

// Start builds a fresh configuration and database and starts slapd on a
// free port of 127.0.0.1. It is stopped by t.Cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	slapd := find(t, "slapd")
	slapadd := find(t, "slapadd")
	dir := t.TempDir()
	cfgDir := filepath.Join(dir, "slapd.d")
	for _, d := range []string{cfgDir, filepath.Join(dir, "db")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	cfgLDIF := filepath.Join(dir, "config.ldif")
	var caFile string
	if o.TLS {
		caFile = writeCerts(t, dir)
	}
	if err := os.WriteFile(cfgLDIF, []byte(config(dir, !o.NoSessionLog, o.TLS)), 0o600); err != nil {
		t.Fatal(err)
	}
	run(slapadd, "-n", "0", "-F", cfgDir, "-l", cfgLDIF)
	data := fmt.Sprintf(`dn: %s
objectClass: dcObject
objectClass: organization
dc: gov
o: gov

dn: %s
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: %s

`, Suffix, ReaderDN, ReaderPW) + o.LDIF
	dataLDIF := filepath.Join(dir, "data.ldif")
	if err := os.WriteFile(dataLDIF, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	// -w writes the syncprov context CSN so content sync works at once;
	// -q skips per-entry checks (schema is still checked).
	run(slapadd, "-n", "1", "-F", cfgDir, "-w", "-q", "-l", dataLDIF)

	port := freePort(t)
	url := fmt.Sprintf("ldap://127.0.0.1:%d", port)
	logf, err := os.Create(filepath.Join(dir, "slapd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// -d 0 keeps slapd in the foreground (so the test owns the process)
	// without debug output.
	listen := url + "/"
	s := &Server{URL: url, Dir: dir, CAFile: caFile}
	if o.TLS {
		s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", freePort(t))
		listen += " " + s.LDAPSURL + "/"
	}
	cmd := exec.Command(slapd, "-d", "0", "-F", cfgDir, "-h", listen)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "slapd.log"))
			t.Fatalf("slapd exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not listen on %s", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s
}

// writeCerts makes a CA and a certificate for 127.0.0.1 signed by it,
// writes cert.pem and key.pem for slapd and returns the CA file.
func writeCerts(t testing.TB, dir string) string {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "govhub test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", "CERTIFICATE", der)
	write("key.pem", "PRIVATE KEY", keyDER)
	write("ca.pem", "CERTIFICATE", caDER)
	return filepath.Join(dir, "ca.pem")
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LDAPModify applies an LDIF change record set as the root DN with
// Debian's ldapmodify: changes come from a client other than the code
// under test.
func (s *Server) LDAPModify(t testing.TB, ldif string) {
	t.Helper()
	cmd := exec.Command(Tool(t, "ldapmodify"), "-x", "-H", s.URL, "-D", RootDN, "-w", RootPW)
	cmd.Stdin = strings.NewReader(ldif)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ldapmodify: %v\n%s", err, out)
	}
}

// LDAPSearch runs Debian's ldapsearch as the root DN and returns its LDIF.
func (s *Server) LDAPSearch(t testing.TB, base, filter string, attrs ...string) string {
	t.Helper()
	args := append([]string{"-x", "-LLL", "-o", "ldif-wrap=no", "-H", s.URL, "-D", RootDN, "-w", RootPW, "-b", base, filter}, attrs...)
	out, err := exec.Command(Tool(t, "ldapsearch"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ldapsearch: %v\n%s", err, out)
	}
	return string(out)
}
