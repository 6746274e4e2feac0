package passhash

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// bcryptHash is a parsed "$2b$CC$" + 22 salt + 31 hash characters.
type bcryptHash struct {
	s    string
	cost int
}

// bcryptAlphabet is bcrypt's own base-64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// parseBcrypt checks the exact shape of a $2a$, $2b$ or $2y$ hash (recognise
// has checked the prefix) and its cost, before x/crypto/bcrypt sees it.
func parseBcrypt(s string) (bcryptHash, error) {
	if len(s) != 60 || s[6] != '$' {
		return bcryptHash{}, fmt.Errorf("%w: bcrypt: want 60 characters $2b$CC$...", ErrMalformed)
	}
	cost, ok := parseDecimal(s[4:6])
	if !ok || cost < uint64(bcrypt.MinCost) || cost > uint64(bcrypt.MaxCost) {
		return bcryptHash{}, fmt.Errorf("%w: bcrypt: cost is not 04 to 31", ErrMalformed)
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return bcryptHash{}, fmt.Errorf("%w: bcrypt: salt and hash are not bcrypt base64", ErrMalformed)
		}
	}
	if cost > maxBcryptCost {
		return bcryptHash{}, fmt.Errorf("%w: bcrypt cost %d above %d", ErrLimit, cost, maxBcryptCost)
	}
	return bcryptHash{s: s, cost: int(cost)}, nil
}

// verify uses bcrypt's constant-time comparison. bcrypt reads at most 72
// bytes of a password, as every bcrypt implementation does.
func (b bcryptHash) verify(password []byte) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(b.s), password)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, fmt.Errorf("%w: bcrypt: %v", ErrMalformed, err)
	}
}
