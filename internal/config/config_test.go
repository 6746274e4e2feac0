package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestExampleFile keeps docs/govhub.example.yaml honest: it must parse with
// unknown keys refused, and say exactly the defaults.
func TestExampleFile(t *testing.T) {
	c, err := Load("../../docs/govhub.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	c.Hostname, d.Hostname = "", ""
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("example file differs from the defaults:\n file %+v\n want %+v", c, d)
	}
}

func TestNoFile(t *testing.T) {
	c, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL() != filepath.Join("govhub-data", "govhub.db") || c.Store.DefaultQuota != 1<<30 || c.Hostname == "" {
		t.Fatalf("defaults = %+v (db %s)", c, c.DatabaseURL())
	}
}

func write(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"unknown key", "stroe:\n  blobs: local\n", "stroe"},
		{"bad size", "store:\n  volume_size: lots\n", "bad size"},
		{"small volume", "store:\n  volume_size: 1KiB\n", "store.volume_size"},
		{"bad duration", "store:\n  dead_grace: soon\n", "bad duration"},
		{"bad level", "log:\n  level: loud\n", "log.level"},
		{"bad fraction", "store:\n  compact_dead_fraction: 1.5\n", "compact_dead_fraction"},
		{"bad blobs", "store:\n  blobs: floppy\n", "store.blobs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(t, tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestValuesAndEnv(t *testing.T) {
	p := write(t, "data_dir: /srv/govhub\nstore:\n  volume_size: 256MiB\n  default_quota: 2GiB\n  dead_grace: 30m\n")
	t.Setenv("GOVHUB_DATABASE_URL", "postgres://govhub:secret@db/govhub")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/srv/govhub" || c.Store.VolumeSize != 256<<20 || c.Store.DefaultQuota != 2<<30 || c.Store.DeadGrace.D() != 30*time.Minute {
		t.Fatalf("values = %+v", c)
	}
	if c.DatabaseURL() != "postgres://govhub:secret@db/govhub" {
		t.Fatalf("env override: %s", c.DatabaseURL())
	}
	secret := filepath.Join(t.TempDir(), "url")
	os.WriteFile(secret, []byte("postgres://from-file/db\n"), 0o600)
	t.Setenv("GOVHUB_DATABASE_URL_FILE", secret)
	c, err = Load(p)
	if err != nil || c.DatabaseURL() != "postgres://from-file/db" {
		t.Fatalf("url file: %s, %v", c.DatabaseURL(), err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "50MiB": 50 << 20, "1GiB": 1 << 30, "10KB": 10000, "2 GiB": 2 << 30} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1XB", "99999999999TiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
	if ByteSize(3<<30).String() != "3GiB" || ByteSize(1500).String() != "1500" {
		t.Error("ByteSize.String")
	}
}
