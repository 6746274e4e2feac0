package passhash

import "strings"

// kind is a scheme Verify implements.
type kind int

const (
	kindNone kind = iota // recognised but refused, or not recognised
	kindArgon2id
	kindArgon2i
	kindBcrypt
	kindSha256
	kindSha512
)

// cryptIDs are the "$id$" markers of crypt(3) and PHC strings. The supported
// ones are argon2 (PHC), bcrypt's OpenBSD/PHP variants and SHA-crypt; the
// others are listed so that IsHash knows them.
var cryptIDs = []struct {
	prefix string
	name   string
	kind   kind
}{
	{"$argon2id$", "argon2id", kindArgon2id},
	{"$argon2i$", "argon2i", kindArgon2i},
	{"$argon2d$", "argon2d", kindNone}, // not for passwords; x/crypto lacks it
	{"$2a$", "bcrypt", kindBcrypt},
	{"$2b$", "bcrypt", kindBcrypt},
	{"$2y$", "bcrypt", kindBcrypt},
	{"$2x$", "bcrypt-2x", kindNone}, // crypt_blowfish's sign-extension bug, kept for compatibility
	{"$2$", "bcrypt-2", kindNone},   // the original, before 2a
	{"$5$", "sha256-crypt", kindSha256},
	{"$6$", "sha512-crypt", kindSha512},
	{"$1$", "md5-crypt", kindNone},
	{"$apr1$", "apr1-md5", kindNone},
	{"$md5$", "sun-md5-crypt", kindNone},
	{"$md5,", "sun-md5-crypt", kindNone},
	{"$3$", "nt-hash", kindNone},
	{"$sha1$", "sha1-crypt", kindNone},
	{"$y$", "yescrypt", kindNone},
	{"$gy$", "gost-yescrypt", kindNone},
	{"$7$", "scrypt", kindNone},
	{"$scrypt$", "scrypt", kindNone},
	{"$sm3$", "sm3-crypt", kindNone},
	{"$pbkdf2$", "pbkdf2", kindNone},
	{"$pbkdf2-sha256$", "pbkdf2-sha256", kindNone},
	{"$pbkdf2-sha512$", "pbkdf2-sha512", kindNone},
	{"$bcrypt-sha256$", "bcrypt-sha256", kindNone},
}

// schemePrefix is a Dovecot (or OpenLDAP) "{SCHEME}" prefix.
type schemePrefix struct {
	name  string
	crypt bool   // followed by a crypt(3)-format hash
	kinds []kind // the inner kinds it may carry; nil for any ({CRYPT})
}

// prefixes are keyed by upper-case scheme name. Dovecot matches them
// without regard to case.
var prefixes = map[string]schemePrefix{
	"ARGON2ID":     {"argon2id", true, []kind{kindArgon2id}},
	"ARGON2I":      {"argon2i", true, []kind{kindArgon2i}},
	"ARGON2":       {"argon2", true, []kind{kindArgon2i, kindArgon2id}}, // OpenLDAP's argon2 module
	"BLF-CRYPT":    {"bcrypt", true, []kind{kindBcrypt}},
	"SHA256-CRYPT": {"sha256-crypt", true, []kind{kindSha256}},
	"SHA512-CRYPT": {"sha512-crypt", true, []kind{kindSha512}},
	"CRYPT":        {"crypt", true, nil},
	"MD5-CRYPT":    {"md5-crypt", true, []kind{}},
	"DES-CRYPT":    {"des-crypt", true, []kind{}},

	// Weak, unsalted or not implemented: recognised only to be refused.
	"PLAIN":         {name: "plain"},
	"CLEARTEXT":     {name: "cleartext"},
	"PLAIN-TRUNC":   {name: "plain-trunc"},
	"PLAIN-MD4":     {name: "plain-md4"},
	"PLAIN-MD5":     {name: "plain-md5"},
	"LDAP-MD5":      {name: "ldap-md5"},
	"MD5":           {name: "md5"}, // Dovecot: md5-crypt; OpenLDAP: plain MD5
	"SMD5":          {name: "smd5"},
	"SHA":           {name: "sha"},
	"SHA1":          {name: "sha1"},
	"SSHA":          {name: "ssha"},
	"SHA256":        {name: "sha256"},
	"SSHA256":       {name: "ssha256"},
	"SHA512":        {name: "sha512"},
	"SSHA512":       {name: "ssha512"},
	"CRAM-MD5":      {name: "cram-md5"},
	"HMAC-MD5":      {name: "hmac-md5"},
	"DIGEST-MD5":    {name: "digest-md5"},
	"NTLM":          {name: "ntlm"},
	"LANMAN":        {name: "lanman"},
	"RPA":           {name: "rpa"},
	"SKEY":          {name: "skey"},
	"OTP":           {name: "otp"},
	"PBKDF2":        {name: "pbkdf2"},
	"PBKDF2-SHA1":   {name: "pbkdf2-sha1"},
	"PBKDF2-SHA256": {name: "pbkdf2-sha256"},
	"PBKDF2-SHA512": {name: "pbkdf2-sha512"},
	"SCRAM-SHA-1":   {name: "scram-sha-1"},
	"SCRAM-SHA-256": {name: "scram-sha-256"},
	"SASL":          {name: "sasl"},
}

// recognition is what recognise found.
type recognition struct {
	name         string // "" when s is not recognisably a hash
	kind         kind
	inner        string // s without its {SCHEME} prefix
	prefix       string // the prefix as written, without braces; "" if none
	mismatch     bool   // the prefix does not allow the inner kind
	innerUnknown bool   // a crypt prefix not followed by a recognised hash
}

// recognise classifies s by its prefix or shape alone; it does no parsing
// beyond that.
func recognise(s string) recognition {
	// A shadow(5) entry locked with "!" before the hash, or "*" or "!"
	// for no password at all.
	if s == "*" {
		return recognition{name: "locked", inner: s}
	}
	if rest := strings.TrimLeft(s, "!"); rest != s && (rest == "" || recognise(rest).name != "") {
		return recognition{name: "locked", inner: s}
	}
	if !strings.HasPrefix(s, "{") {
		name, k := cryptScheme(s)
		return recognition{name: name, kind: k, inner: s}
	}

	end := strings.IndexByte(s, '}')
	if end < 2 || end > 33 {
		return recognition{}
	}
	prefix, inner := s[1:end], s[end+1:]
	base, suffix, hasSuffix := strings.Cut(strings.ToUpper(prefix), ".")
	sp, known := prefixes[base]
	if !known {
		return recognition{}
	}
	r := recognition{name: sp.name, inner: inner, prefix: prefix}
	if hasSuffix {
		// Dovecot's encoding suffixes: {SHA256.HEX}, {PLAIN.B64}.
		switch suffix {
		case "HEX", "B64", "BASE64":
			r.name = strings.ToLower(prefix)
			return r
		default:
			return recognition{}
		}
	}
	if !sp.crypt {
		return r
	}
	name, k := cryptScheme(inner)
	if name == "" {
		// "{SHA512-CRYPT}garbage" is a sha512-crypt hash gone wrong;
		// "{CRYPT}garbage" is of no known scheme.
		r.innerUnknown = true
		if len(sp.kinds) == 1 {
			r.kind = sp.kinds[0]
		}
		return r
	}
	r.name, r.kind = name, k
	if sp.kinds != nil && k != kindNone {
		r.mismatch = true
		for _, want := range sp.kinds {
			if k == want {
				r.mismatch = false
			}
		}
	}
	return r
}

// cryptScheme recognises an unprefixed crypt(3) or PHC string.
func cryptScheme(s string) (string, kind) {
	for _, id := range cryptIDs {
		if strings.HasPrefix(s, id.prefix) {
			return id.name, id.kind
		}
	}
	switch {
	case len(s) == 13 && isCrypt64(s) && desLast(s[12]):
		// Traditional DES: 2 salt characters and 11 encoding 64 bits, so
		// the last one carries 4 bits and the low 2 are zero.
		return "des-crypt", kindNone
	case len(s) == 20 && s[0] == '_' && isCrypt64(s[1:]) && desLast(s[19]):
		// BSDi extended DES: "_", 4 count, 4 salt and 11 hash characters.
		return "bsdi-crypt", kindNone
	}
	if id, ok := mcfID(s); ok {
		return "$" + id + "$", kindNone
	}
	return "", kindNone
}

func desLast(c byte) bool {
	return strings.IndexByte(crypt64, c)%4 == 0
}

// mcfID returns the id of a string in the modular crypt format,
// "$id$..." with id of lower-case letters, digits and '-', at least 20
// characters long and without white space: a hash of a scheme this package
// does not know, more likely than a password of that shape.
func mcfID(s string) (string, bool) {
	if len(s) < 20 || s[0] != '$' || strings.ContainsAny(s, " \t\r\n") {
		return "", false
	}
	end := strings.IndexByte(s[1:], '$') + 1
	if end < 2 || end > 33 {
		return "", false
	}
	id := s[1:end]
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", false
		}
	}
	return id, true
}
