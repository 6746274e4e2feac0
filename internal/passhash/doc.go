// Package passhash owns the password hashes of mail accounts and app
// passwords: it makes new ones (Hash), checks a password against a stored
// or imported one at login (Verify), says when a hash should be replaced
// (NeedsRehash), and tells an importer whether a value is a hash at all and
// of which scheme (IsHash, Scheme, Check).
//
// It does not store hashes, set password policy (minimum length, strength),
// rate-limit or queue authentication attempts, implement SASL mechanisms or
// read CSV files; those belong to the account store, the protocol servers
// and the importer.
//
// # New hashes
//
// Hash makes argon2id (RFC 9106) hashes in the PHC string format
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with a 16-byte salt from crypto/rand and a 32-byte key, both in standard
// base64 without padding. The parameters are the first of the equivalent
// minimum configurations in OWASP's Password Storage Cheat Sheet: 19 MiB
// of memory, 2 passes, 1 lane. They suit govhub's login path:
//
//   - Desktop mail clients authenticate often: each opens several IMAP
//     connections, reconnects after sleep or a network change, and submits
//     over SMTP AUTH, each time with the account or app password. The hash
//     is paid on every one of those, so it must be cheap for the server
//     while still costly per guess for an attacker. One verification takes
//     30 to 45 ms of one core on govhub's 2-core server (BenchmarkVerify);
//     both cores give some 40 to 60 logins a second.
//   - One lane (p=1) keeps a login on one core, so a burst of logins
//     degrades fairly instead of each login taking both cores of a shared
//     machine. More lanes would not make a single login meaningfully faster
//     on 2 cores.
//   - 19 MiB per concurrent verification: 50 at once need under 1 GiB.
//     RFC 9106's recommended settings (2 GiB, or 64 MiB with t=3 and p=4)
//     cost roughly ten times as much per login and are meant for machines
//     that hash rarely.
//
// When the parameters change, NeedsRehash reports every older hash, and
// the login path replaces it with Hash of the password it has just
// verified:
//
//	ok, err := passhash.Verify(stored, password)
//	if ok && passhash.NeedsRehash(stored) {
//		newHash, err := passhash.Hash(password)
//		// store newHash
//	}
//
// Hash refuses passwords longer than MaxPasswordLen (4096) bytes; Verify
// reports such a password as not matching without hashing it.
//
// # Verified schemes
//
// Accounts imported from other mail systems keep their hashes until their
// first login, so Verify also accepts:
//
//   - $argon2id$ and $argon2i$ PHC strings, version 19 only (x/crypto has
//     no Argon2 1.0 nor argon2d);
//   - bcrypt $2a$, $2b$ and $2y$ (golang.org/x/crypto/bcrypt), which reads
//     at most 72 bytes of a password, as every bcrypt does; $2x$ (the
//     crypt_blowfish bug-compatibility variant) is refused;
//   - SHA-crypt $5$ (SHA-256) and $6$ (SHA-512) with the optional rounds=N$
//     field, implemented here after Ulrich Drepper's "Unix crypt using
//     SHA-256 and SHA-512" and tested with every vector of that text. As
//     the text requires, N below 1000 counts as 1000 and N above 999999999
//     as 999999999.
//
// Each may carry a Dovecot-style scheme prefix, matched without regard to
// case and stripped: {ARGON2ID}, {ARGON2I}, {BLF-CRYPT}, {SHA256-CRYPT},
// {SHA512-CRYPT}, {CRYPT} (any of the above), and OpenLDAP's {ARGON2}. A
// prefix that names another scheme than the hash after it ("{SHA256-CRYPT}
// $6$...") is refused as malformed, since it means the data is not what the
// exporter thought it was.
//
// # Refused schemes
//
// Verify refuses with ErrUnsupported hashes that are weak, unsalted or not
// implemented: {PLAIN} and {CLEARTEXT}, {MD5}, {PLAIN-MD5}, {SHA}, {SSHA},
// {SHA256}, {SHA512} and their salted forms, {CRAM-MD5}, {NTLM}, {SCRAM-*},
// {PBKDF2}, md5-crypt $1$ and $apr1$, DES and BSDi crypt, yescrypt $y$,
// scrypt $7$, argon2d, and any other "$id$" string. Their users must reset
// their passwords (or, for {PLAIN}, the importer may decide to Hash the
// plain text itself).
//
// # Hash or password: IsHash and Scheme
//
// An import column may hold hashes or plain passwords. IsHash is true for
// every recognisable hash, refused schemes included, so that a refused hash
// is reported rather than stored as the password "$1$...", which would let
// anyone holding the old hash dump log in. Scheme names it for the report:
//
//	if !passhash.IsHash(cell) {
//		hash, err = passhash.Hash(cell) // a plain password
//	} else if err := passhash.Check(cell); err != nil {
//		name, _ := passhash.Scheme(cell)
//		return fmt.Errorf("line %d: %s hash: %w", line, name, err)
//		// e.g. "line 17: md5-crypt hash: passhash: unsupported hash scheme: md5-crypt"
//	}
//
// Recognition errs on the side of "hash": a known {SCHEME} prefix or
// "$id$" marker is enough, an unknown "$id$" marker counts when the string
// is at least 20 characters long, and a bare 13-character string of
// [./0-9A-Za-z] whose last character can end a DES hash counts as
// des-crypt, although a plain password can have that shape too. Such a
// password is reported, never silently mistaken; an importer that knows its
// column holds plain text should not ask IsHash. White space around a value
// is ignored by IsHash and Scheme and refused by Check and Verify, so a
// hash with a stray space is reported as well.
//
// # Limits
//
// A hash in an imported file chooses its own cost. So that a hostile or
// careless file cannot make a login take minutes or exhaust memory, Verify
// and Check refuse, with an error wrapping ErrLimit (and so ErrUnsupported),
// hashes above these bounds:
//
//   - argon2: m above 1 GiB (1048576 KiB), t above 10, p above 16;
//   - bcrypt: cost above 16;
//   - SHA-crypt: rounds above 10,000,000, after the spec's clamping, and
//     a work budget of the rounds loop equal to 10,000,000 rounds with a
//     64-byte password: the loop hashes the password twice per round, so
//     at the rounds limit a 4 KiB password would otherwise cost minutes.
//     At 5000 rounds (the default) any password up to 4096 bytes fits.
//
// Measured on govhub's 2-core server, one verification at these bounds
// takes about 14 s (argon2id m=1 GiB t=10 p=1, or 11 s using both cores at
// p=16), 5 s (bcrypt 16), 8.5 s (sha512-crypt) and 2 s (sha256-crypt). An
// argon2 hash at the bound also holds 1 GiB for those seconds: the limit on
// concurrent authentications of the protocol servers is what bounds the
// memory of many such logins at once. Hashes made by common tools are far
// below the bounds (bcrypt 10 to 12, sha-crypt 5000 to 656000 rounds).
//
// # Errors
//
// Errors wrap ErrMalformed (not a well-formed hash of a verified scheme) or
// ErrUnsupported (a refused scheme, or through ErrLimit, parameters above
// the bounds). They name the scheme and the offending parameter, never the
// salt, the hash or the password, so they may be logged. An error from
// Verify never means the password was right.
package passhash
