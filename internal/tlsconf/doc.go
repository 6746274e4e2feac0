// Package tlsconf gives the mail listeners their server TLS configuration:
// a certificate and key loaded from PEM files named in the config, or, when
// none are configured, a self-signed ECDSA P-256 pair generated into the
// data directory on first start and reused on every later start.
//
// Promises:
//   - The generated key file is written with mode 0600, to a temporary file
//     in the same directory that is fsynced and then renamed, so a crash
//     never leaves a half-written key or a certificate without its key
//     (the key is renamed into place before the certificate, and a start
//     that finds only one of the two regenerates both).
//   - The generated certificate names the configured hostname, localhost,
//     127.0.0.1 and ::1, so local clients and tests can verify it by name
//     once they trust it.
//   - Every *tls.Config returned has MinVersion TLS 1.2 (RFC 8996 deprecates
//     TLS 1.0 and 1.1; RFC 7525 recommends 1.2 as the floor).
//
// Not here: ACME, certificate reloading, client certificates. A
// self-signed certificate is for one-machine installations and tests; a
// deployment that other servers deliver to should configure a real one.
package tlsconf
