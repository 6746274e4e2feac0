package passhash

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// MaxPasswordLen is the longest password Hash accepts, in bytes. Verify
// reports a longer password as not matching without hashing it.
const MaxPasswordLen = 4096

var (
	// ErrMalformed is wrapped by errors for a string that is not a
	// well-formed hash of a scheme Verify implements.
	ErrMalformed = errors.New("passhash: malformed hash")

	// ErrUnsupported is wrapped by errors for a hash in a scheme this
	// package refuses (weak, unsalted or not implemented) and, through
	// ErrLimit, for a hash whose cost parameters are above the limits.
	ErrUnsupported = errors.New("passhash: unsupported hash scheme")

	// ErrLimit is wrapped by errors for a hash whose cost parameters are
	// above the limits that keep one verification to seconds (see the
	// package documentation). errors.Is(err, ErrUnsupported) is also true
	// for such an error.
	ErrLimit error = limitError{}

	// ErrPasswordTooLong is returned by Hash for a password longer than
	// MaxPasswordLen bytes.
	ErrPasswordTooLong = fmt.Errorf("passhash: password longer than %d bytes", MaxPasswordLen)
)

type limitError struct{}

func (limitError) Error() string        { return "passhash: hash cost above limit" }
func (limitError) Is(target error) bool { return target == ErrUnsupported }

// Limits on the parameters of a hash accepted by Verify and Check. Each one
// keeps a single verification of an imported hash to seconds of one core.
const (
	maxArgon2Memory  = 1 << 20 // KiB: 1 GiB
	maxArgon2Time    = 10
	maxArgon2Threads = 16
	maxBcryptCost    = 16
	maxShaRounds     = 10_000_000
	maxEncodedLen    = 1024
)

// current are the parameters of Hash; see the package documentation.
var current = argon2Params{id: true, memory: 19 * 1024, time: 2, threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// Hash returns an argon2id hash of password in the PHC string format
// "$argon2id$v=19$m=19456,t=2,p=1$salt$key", with a fresh 16-byte random
// salt and a 32-byte key. It refuses passwords longer than MaxPasswordLen.
func Hash(password string) (string, error) {
	if len(password) > MaxPasswordLen {
		return "", ErrPasswordTooLong
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("passhash: reading salt: %w", err)
	}
	return current.hash([]byte(password), salt, keyLen), nil
}

// Verify reports whether password matches the hash encoded, which may be in
// any supported scheme, with or without a Dovecot-style {SCHEME} prefix. The
// comparison of derived keys is constant-time.
//
// A malformed hash gives an error wrapping ErrMalformed; a hash in a refused
// scheme, or with parameters above the limits, one wrapping ErrUnsupported
// (and ErrLimit). Such an error means the account cannot log in until its
// hash is replaced; it never means the password was right. A password longer
// than MaxPasswordLen bytes is reported as not matching, without an error.
func Verify(encoded, password string) (ok bool, err error) {
	v, err := parse(encoded)
	if err != nil {
		return false, err
	}
	if len(password) > MaxPasswordLen {
		return false, nil
	}
	return v.verify([]byte(password))
}

// Check returns nil if Verify can verify passwords against encoded: it is a
// well-formed hash in a supported scheme with parameters within the limits.
// Otherwise its error wraps ErrMalformed or ErrUnsupported, as Verify's
// would. It does no hashing, so an importer can check every row cheaply.
func Check(encoded string) error {
	_, err := parse(encoded)
	return err
}

// NeedsRehash reports whether encoded should be replaced by Hash of the
// password once that password has been verified: true for every hash other
// than argon2id with the parameters Hash uses now (memory, time, threads,
// salt and key length), and for anything Verify cannot verify. A current
// hash behind a {ARGON2ID} prefix does not need rehashing.
func NeedsRehash(encoded string) bool {
	v, err := parse(encoded)
	if err != nil {
		return true
	}
	a, ok := v.(argon2Params)
	if !ok {
		return true
	}
	return !a.id || a.memory != current.memory || a.time != current.time ||
		a.threads != current.threads || len(a.salt) != saltLen || len(a.key) != keyLen
}

// IsHash reports whether s is recognisably a password hash rather than a
// plain password: it begins with a known {SCHEME} prefix or crypt(3) "$id$"
// marker, or has the exact shape of a DES or BSDi crypt hash. It is true for
// schemes Verify refuses, too, so that an importer reports such a value
// instead of storing it as somebody's password; Scheme says which scheme it
// is and Check whether it can be used. Surrounding white space is ignored
// here (and refused by Check).
func IsHash(s string) bool {
	name, _ := Scheme(s)
	return name != ""
}

// Scheme names the hash scheme of s, for messages such as "unsupported hash
// scheme md5-crypt on line 17", and reports whether Verify implements that
// scheme. name is "" when s is not recognisably a hash (IsHash is false).
//
// Names are lower case: "argon2id", "argon2i", "bcrypt", "sha256-crypt",
// "sha512-crypt" are supported; refused ones include "md5-crypt",
// "des-crypt", "bsdi-crypt", "yescrypt", "argon2d", "bcrypt-2x", "plain",
// "md5", "sha", "ssha", "locked" (a "!"-prefixed shadow entry) and, for an
// unknown "$id$" marker, "$id$" itself. A prefixed crypt hash takes the name
// of the hash after the prefix ("{CRYPT}$1$..." is "md5-crypt").
//
// supported does not promise that s is well formed: "$6$garbage" is
// ("sha512-crypt", true). Use Check for that.
func Scheme(s string) (name string, supported bool) {
	r := recognise(strings.TrimSpace(s))
	return r.name, r.kind != kindNone
}

// verifier is a parsed hash.
type verifier interface {
	verify(password []byte) (bool, error)
}

// parse reads encoded into a verifier, checking its form and limits.
func parse(encoded string) (verifier, error) {
	switch {
	case encoded == "":
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	case len(encoded) > maxEncodedLen:
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxEncodedLen)
	case strings.TrimSpace(encoded) != encoded:
		return nil, fmt.Errorf("%w: surrounding white space", ErrMalformed)
	}
	r := recognise(encoded)
	switch {
	case r.name == "":
		return nil, fmt.Errorf("%w: not a recognised password hash", ErrMalformed)
	case r.innerUnknown:
		return nil, fmt.Errorf("%w: {%s} is not followed by a recognised crypt hash", ErrMalformed, r.prefix)
	case r.kind == kindNone:
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, r.name)
	case r.mismatch:
		return nil, fmt.Errorf("%w: {%s} prefix on a %s hash", ErrMalformed, r.prefix, r.name)
	}
	switch r.kind {
	case kindArgon2id, kindArgon2i:
		return parseArgon2(r.inner)
	case kindBcrypt:
		return parseBcrypt(r.inner)
	default: // kindSha256, kindSha512
		return parseSha(r.inner)
	}
}

// parseDecimal reads a non-empty string of ASCII digits. Values too large
// for any limit saturate instead of overflowing, so "rounds=99999999999"
// clamps as the SHA-crypt spec's strtoul does.
func parseDecimal(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<40 {
			n = n*10 + uint64(c-'0')
		}
	}
	return n, true
}
