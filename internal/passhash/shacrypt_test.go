package passhash

import (
	"errors"
	"strings"
	"testing"
)

// specVectors are every test vector of Drepper's "Unix crypt using SHA-256
// and SHA-512" (https://www.akkadia.org/drepper/SHA-crypt.txt), SHA-256 then
// SHA-512: the salt setting given to crypt, the key, and the result. They
// cover the default rounds, rounds=N$ appearing in the output, salts
// truncated to 16 characters, a key longer than one digest, a short salt,
// and rounds=10 clamped to 1000.
var specVectors = []struct {
	setting, key, want string
}{
	{"$5$saltstring", "Hello world!",
		"$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"},
	{"$5$rounds=10000$saltstringsaltstring", "Hello world!",
		"$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"},
	{"$5$rounds=5000$toolongsaltstring", "This is just a test",
		"$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5"},
	{"$5$rounds=1400$anotherlongsaltstring",
		"a very much longer text to encrypt.  This one even stretches over more" + "than one line.",
		"$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1"},
	{"$5$rounds=77777$short", "we have a short salt string but not a short password",
		"$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/"},
	{"$5$rounds=123456$asaltof16chars..", "a short string",
		"$5$rounds=123456$asaltof16chars..$gP3VQ/6X7UUEW3HkBn2w1/Ptq2jxPyzV/cZKmF/wJvD"},
	{"$5$rounds=10$roundstoolow", "the minimum number is still observed",
		"$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"},

	{"$6$saltstring", "Hello world!",
		"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"$6$rounds=10000$saltstringsaltstring", "Hello world!",
		"$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."},
	{"$6$rounds=5000$toolongsaltstring", "This is just a test",
		"$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0"},
	{"$6$rounds=1400$anotherlongsaltstring",
		"a very much longer text to encrypt.  This one even stretches over more" + "than one line.",
		"$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1"},
	{"$6$rounds=77777$short", "we have a short salt string but not a short password",
		"$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiAc0"},
	{"$6$rounds=123456$asaltof16chars..", "a short string",
		"$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVcgEJAstJeonj1"},
	{"$6$rounds=10$roundstoolow", "the minimum number is still observed",
		"$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX."},
}

// libxcryptVectors were made with crypt(3) of libxcrypt 4.4 (Debian 12,
// through Python's crypt module): an empty key, keys longer than 2 and 3
// digests, keys of exactly one digest length and of two, UTF-8 keys, 16-byte
// salts and rounds=1001.
var libxcryptVectors = []struct{ key, hash string }{
	{"", "$5$emptysalt$7Ggii2OZa/7DQx2XFDomXtHl2Ea.SGT2XvtgDslxc.8"},
	{"", "$6$emptypw$TWmzQ8/uLn1BFSZ5Lkfum8lAba5vixF9Nl3Aiof.Praatq9nh0kkPuTdoVrIL6du0L6LAoadbPq.q.D7keveg/"},
	{strings.Repeat("x", 200), "$5$saltsaltsaltsalt$jkFpP93RlTwZzb8Fu69RMdgGLyok3Fr5TJfsflkg0I0"},
	{strings.Repeat("x", 200), "$6$saltsaltsaltsalt$FHROXVfvCp98YE/8i3uKTnXgtg5eACZwDn0kUTX5P5GnFt0Vz3/YHQ3F43zWeFRRMgzeflb5m01Oc7CNAIJWP0"},
	{"pässwörd ☺", "$5$rounds=1000$Utf8Salt$28AueXBd03ZOJHym3MQlUnrVlVF13SvUrKzs.QGCI6B"},
	{"pässwörd ☺", "$6$rounds=1001$Utf8Salt$FIa5zcvUYoDKXCxXsXT/lem/ujEirUn8ZRK8wioc2To3UjI6fi4qiy3.jWeqXGI3ZktBviWskpNrBM5sssZaK/"},
	{strings.Repeat("a", 64), "$5$s64$4qu9nBlTujdCjMwD1HLCVlViqwM4RrwakeBcXgirY./"},
	{strings.Repeat("a", 128), "$6$s128$4YFUPp9lOH6qdKyFqwCYqjenRkrXkeEfMYSz7ta4a8D2YpP8zxh/ILzZK/CZ56Q6clbafGGxIgbJkl0/W1Bvq/"},
}

func TestShaCryptSpecVectors(t *testing.T) {
	for _, v := range specVectors {
		t.Run(v.setting, func(t *testing.T) {
			got, err := shaCrypt(v.setting, []byte(v.key))
			if err != nil || got != v.want {
				t.Fatalf("shaCrypt(%q) = %q, %v; want %q", v.setting, got, err, v.want)
			}
			ok, err := Verify(v.want, v.key)
			if !ok || err != nil {
				t.Fatalf("Verify(spec result) = %v, %v", ok, err)
			}
			if ok, err := Verify(v.want, v.key+"!"); ok || err != nil {
				t.Fatalf("Verify(spec result, wrong key) = %v, %v", ok, err)
			}
		})
	}
}

func TestShaCryptLibxcryptVectors(t *testing.T) {
	for _, v := range libxcryptVectors {
		t.Run(v.hash[:3]+v.hash[len(v.hash)-6:], func(t *testing.T) {
			if ok, err := Verify(v.hash, v.key); !ok || err != nil {
				t.Fatalf("Verify = %v, %v", ok, err)
			}
			if ok, err := Verify(v.hash, v.key+"x"); ok || err != nil {
				t.Fatalf("Verify(wrong key) = %v, %v", ok, err)
			}
		})
	}
}

// A stored hash whose rounds field is below the minimum verifies as the
// spec computes it: with 1000 rounds.
func TestShaCryptStoredRoundsClampedUp(t *testing.T) {
	for _, h := range []string{
		"$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
		"$5$rounds=0$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC",
		"$6$rounds=999$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBaHHrsX.",
	} {
		if ok, err := Verify(h, "the minimum number is still observed"); !ok || err != nil {
			t.Errorf("Verify(%s) = %v, %v", h, ok, err)
		}
	}
}

// Rounds above 999999999 clamp to it, as the spec's strtoul and MIN do, even
// past 64 bits; Verify then refuses anything above maxShaRounds quickly.
func TestShaCryptRoundsClampedDown(t *testing.T) {
	for _, tc := range []struct {
		rounds string
		want   int
	}{
		{"999999999", 999999999},
		{"1000000000", 999999999},
		{"4294967296", 999999999},
		{"99999999999999999999999999999999", 999999999},
		{"10000000", 10000000},
		{"010000", 10000},
	} {
		setting := "$6$rounds=" + tc.rounds + "$salt"
		p, _, err := parseShaSetting(setting)
		if err != nil || p.rounds != tc.want || !p.custom {
			t.Errorf("parseShaSetting(%q) = rounds %d, %v; want %d", setting, p.rounds, err, tc.want)
		}
	}
	digest := strings.Repeat("a", 86)
	for _, r := range []string{"10000001", "999999999", "1000000000", "99999999999999999999999999999999"} {
		h := "$6$rounds=" + r + "$salt$" + digest
		_, err := Verify(h, "pw")
		if !errors.Is(err, ErrLimit) || !errors.Is(err, ErrUnsupported) {
			t.Errorf("Verify(rounds=%s) error = %v, want ErrLimit", r, err)
		}
	}
	if err := Check("$6$rounds=10000000$salt$" + digest); err != nil {
		t.Errorf("Check(rounds=10000000) = %v, want nil", err)
	}
}

// A long password against a high-rounds hash is refused before hashing;
// the same password against default rounds is hashed.
func TestShaCryptWorkLimit(t *testing.T) {
	long := strings.Repeat("p", MaxPasswordLen)
	h := "$6$rounds=10000000$salt$" + strings.Repeat("a", 86)
	if _, err := Verify(h, long); !errors.Is(err, ErrLimit) {
		t.Fatalf("Verify(rounds=10000000, 4 KiB password) error = %v, want ErrLimit", err)
	}
	want, err := shaCrypt("$6$rounds=5000$salt", []byte(long))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Verify(want, long); !ok || err != nil {
		t.Fatalf("Verify(rounds=5000, 4 KiB password) = %v, %v", ok, err)
	}
	// Passwords up to 64 bytes fit the budget at the rounds limit, for
	// any salt; longer ones are refused from some length on.
	for _, v := range []*shaVariant{sha256Crypt, sha512Crypt} {
		p := shaParams{v: v, rounds: maxShaRounds}
		for _, salt := range []string{"", "0123456789abcdef"} {
			p.salt = salt
			if w := p.work(64); w > v.maxWork() {
				t.Errorf("%s: work(64) = %d above budget %d", v.name, w, v.maxWork())
			}
			if w := p.work(200); w <= v.maxWork() {
				t.Errorf("%s: work(200) = %d within budget %d", v.name, w, v.maxWork())
			}
		}
	}
}
