package passhash

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2Params is a parsed argon2 PHC string
// "$argon2id$v=19$m=MEMORY,t=TIME,p=THREADS$SALT$KEY" (RFC 9106, and the
// PHC string format of the reference implementation).
type argon2Params struct {
	id      bool   // argon2id rather than argon2i
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

func (a argon2Params) name() string {
	if a.id {
		return "argon2id"
	}
	return "argon2i"
}

// derive computes a key of length n for password.
func (a argon2Params) derive(password, salt []byte, n uint32) []byte {
	if a.id {
		return argon2.IDKey(password, salt, a.time, a.memory, a.threads, n)
	}
	return argon2.Key(password, salt, a.time, a.memory, a.threads, n)
}

// hash derives a key of length n and formats it with the parameters.
func (a argon2Params) hash(password, salt []byte, n uint32) string {
	key := a.derive(password, salt, n)
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s", a.name(), argon2.Version,
		a.memory, a.time, a.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func (a argon2Params) verify(password []byte) (bool, error) {
	got := a.derive(password, a.salt, uint32(len(a.key)))
	return subtle.ConstantTimeCompare(got, a.key) == 1, nil
}

// parseArgon2 reads a PHC string. It refuses what x/crypto/argon2 cannot
// compute (version 0x10, keyid and data parameters) as unsupported, and
// parameters the reference implementation rejects (t < 1, p < 1, m < 8p,
// salt under 8 bytes, key under 4 bytes, RFC 9106 section 3.1) as malformed.
func parseArgon2(s string) (argon2Params, error) {
	var a argon2Params
	// Split on '$' is cheap: parse has bounded s to maxEncodedLen.
	f := strings.Split(s, "$")
	if len(f) < 2 || f[0] != "" {
		return a, fmt.Errorf("%w: argon2: not a PHC string", ErrMalformed)
	}
	switch f[1] {
	case "argon2id":
		a.id = true
	case "argon2i":
	default:
		return a, fmt.Errorf("%w: argon2: unknown variant", ErrMalformed)
	}
	name := a.name()
	f = f[2:]
	version := uint64(0x10) // the PHC format's default when v= is absent
	if len(f) > 0 && strings.HasPrefix(f[0], "v=") {
		v, ok := parseDecimal(f[0][2:])
		if !ok {
			return a, fmt.Errorf("%w: %s: bad version field", ErrMalformed, name)
		}
		version = v
		f = f[1:]
	}
	if len(f) != 3 {
		return a, fmt.Errorf("%w: %s: want parameters, salt and key", ErrMalformed, name)
	}
	if version != argon2.Version {
		return a, fmt.Errorf("%w: %s version %d (only %d)", ErrUnsupported, name, version, argon2.Version)
	}

	params := strings.Split(f[0], ",")
	if len(params) > 3 && len(params) <= 5 && hasKeyidOrData(params[3:]) {
		return a, fmt.Errorf("%w: %s with keyid or data parameters", ErrUnsupported, name)
	}
	if len(params) != 3 {
		return a, fmt.Errorf("%w: %s: want m=,t=,p= parameters", ErrMalformed, name)
	}
	var vals [3]uint64
	for i, k := range [3]string{"m=", "t=", "p="} {
		digits, ok := strings.CutPrefix(params[i], k)
		if ok {
			vals[i], ok = parseDecimal(digits)
		}
		if !ok {
			return a, fmt.Errorf("%w: %s: want m=,t=,p= parameters", ErrMalformed, name)
		}
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case m > maxArgon2Memory:
		return a, fmt.Errorf("%w: %s m=%d KiB above %d", ErrLimit, name, m, maxArgon2Memory)
	case t > maxArgon2Time:
		return a, fmt.Errorf("%w: %s t=%d above %d", ErrLimit, name, t, maxArgon2Time)
	case p > maxArgon2Threads:
		return a, fmt.Errorf("%w: %s p=%d above %d", ErrLimit, name, p, maxArgon2Threads)
	case t < 1 || p < 1 || m < 8*p:
		return a, fmt.Errorf("%w: %s: need t >= 1, p >= 1 and m >= 8p", ErrMalformed, name)
	}
	a.memory, a.time, a.threads = uint32(m), uint32(t), uint8(p)

	var err error
	if a.salt, err = decodeB64(f[1]); err != nil || len(a.salt) < 8 {
		return a, fmt.Errorf("%w: %s: salt is not base64 of at least 8 bytes", ErrMalformed, name)
	}
	if a.key, err = decodeB64(f[2]); err != nil || len(a.key) < 4 {
		return a, fmt.Errorf("%w: %s: key is not base64 of at least 4 bytes", ErrMalformed, name)
	}
	return a, nil
}

func hasKeyidOrData(params []string) bool {
	for _, p := range params {
		if !strings.HasPrefix(p, "keyid=") && !strings.HasPrefix(p, "data=") {
			return false
		}
	}
	return true
}

// decodeB64 decodes unpadded standard base64. encoding/base64 skips CR and
// LF; a hash containing them is refused here instead.
func decodeB64(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, fmt.Errorf("byte %s at %d", strconv.QuoteRune(rune(c)), i)
		}
	}
	return base64.RawStdEncoding.DecodeString(s)
}
