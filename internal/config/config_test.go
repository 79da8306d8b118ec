package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cleanEnv hides any HERALD_* variable of the environment the tests run in.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "HERALD_") {
			t.Setenv(k, "") // ff ignores empty variables
		}
	}
}

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if !Loopback(c.Addr) {
		t.Fatalf("default addr %q is not loopback", c.Addr)
	}
	if c.Insecure {
		t.Fatal("default is insecure")
	}
	path, err := c.SQLitePath()
	if err != nil || path != "herald.db" {
		t.Fatalf("SQLitePath() = %q, %v", path, err)
	}
}

func TestParseNoArgsIsDefault(t *testing.T) {
	cleanEnv(t)
	c, err := Parse("herald", nil, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c != Default() {
		t.Fatalf("Parse(nil) = %+v, want Default() %+v", c, Default())
	}
}

func TestAddrLoopback(t *testing.T) {
	tests := []struct {
		addr     string
		insecure bool
		ok       bool
	}{
		{"127.0.0.1:8080", false, true},
		{"127.0.0.1:0", false, true},
		{"127.1.2.3:80", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"192.168.1.5:80", false, false},
		{"[::]:8080", false, false},
		{"10.0.0.1:443", false, false},
		{"example.com:80", false, false},
		{"0.0.0.0:8080", true, true},
		{":8080", true, true},
		{"192.168.1.5:80", true, true},
		{"127.0.0.1", false, false}, // no port
		{"127.0.0.1", true, false},  // no port, even when insecure
		{"", true, false},
	}
	for _, tt := range tests {
		name := tt.addr
		if tt.insecure {
			name += " insecure"
		}
		t.Run(name, func(t *testing.T) {
			c := Default()
			c.Addr, c.Insecure = tt.addr, tt.insecure
			err := c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "addr") {
				t.Fatalf("error %q does not name the setting", err)
			}
		})
	}
}

// TestAuthLeavesDevMode: with a credential configured, any address may be used without
// --insecure; without one, only loopback.
func TestAuthLeavesDevMode(t *testing.T) {
	cleanEnv(t)
	t.Setenv("HERALD_JWT_SECRET", strings.Repeat("s", 32))
	c, err := Parse("herald", []string{"-addr", "0.0.0.0:8080", "-jwks-url", "http://127.0.0.1:9999/jwks",
		"-jwt-issuer", "https://id.example.com", "-jwt-audience", "herald"}, &bytes.Buffer{})
	if err != nil {
		t.Fatalf("public address with auth: %v", err)
	}
	if !c.AuthEnabled() || c.Insecure {
		t.Fatalf("AuthEnabled %v Insecure %v", c.AuthEnabled(), c.Insecure)
	}
	if d := Default(); d.AuthEnabled() {
		t.Fatal("the default configuration has auth")
	}
}

func TestClusterSettings(t *testing.T) {
	cleanEnv(t)
	c, err := Parse("herald", []string{"-store", "postgres://herald:pw@db.example.com/herald?pool_max_conns=32", "-bus", "redis://:pw@redis:6379/0"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.StoreKind() != "postgres" || c.BusKind() != "redis" || !c.Clustered() {
		t.Fatalf("kinds %q %q clustered %v", c.StoreKind(), c.BusKind(), c.Clustered())
	}
	if strings.Contains(c.RedactedStore()+c.RedactedBus(), "pw") {
		t.Fatalf("redacted: %s %s", c.RedactedStore(), c.RedactedBus())
	}
	for bus, kind := range map[string]string{"nats://a:4222,nats://b:4222": "nats", "amqp://u:p@rabbit:5672/": "amqp", "rediss://r:6380": "redis"} {
		c, err := Parse("herald", []string{"-bus", bus}, &bytes.Buffer{})
		if err != nil || c.BusKind() != kind {
			t.Errorf("bus %s: kind %q, %v", bus, c.BusKind(), err)
		}
	}
	if d := Default(); d.Clustered() {
		t.Fatal("the default is clustered")
	}
}

func TestCORSOriginList(t *testing.T) {
	c := Default()
	c.CORSOrigins = "https://App.Example.com/, http://localhost:3000, https://*.evil.example"
	got := strings.Join(c.CORSOriginList(), " ")
	if got != "https://app.example.com http://localhost:3000" {
		t.Fatalf("CORSOriginList = %q", got)
	}
}

// TestMetricsSettings: where the metrics listener may be, and where /metrics is served.
func TestMetricsSettings(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		auth         bool
		metricsOnAPI bool
	}{
		{"dev mode, loopback listener", []string{"-metrics-addr", "127.0.0.1:9090"}, false, true},
		{"dev mode, insecure", []string{"-insecure", "-metrics-addr", "0.0.0.0:9090"}, false, true},
		{"auth, all interfaces", []string{"-metrics-addr", ":9090"}, true, false},
		{"auth, an internal interface", []string{"-metrics-addr", "10.1.2.3:9090"}, true, false},
		{"auth, port 0", []string{"-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0"}, true, false},
		{"auth, public", []string{"-metrics-public"}, true, true},
		{"auth, nothing", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			if tt.auth {
				t.Setenv("HERALD_JWT_SECRET", strings.Repeat("s", 32))
			}
			c, err := Parse("herald", tt.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c.MetricsOnAPI() != tt.metricsOnAPI {
				t.Fatalf("MetricsOnAPI() = %v, want %v", c.MetricsOnAPI(), tt.metricsOnAPI)
			}
		})
	}
}

func TestAllowedHostList(t *testing.T) {
	cleanEnv(t)
	c, err := Parse("herald", []string{"-allowed-hosts", " Herald.Test ,dev-vm.internal.,[::1],192.168.1.5,,"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.AllowedHostList(), " "); got != "herald.test dev-vm.internal ::1 192.168.1.5" {
		t.Fatalf("AllowedHostList() = %q", got)
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:1", true},
		{"[::1]:1", true},
		{"localhost:1", true},
		{"[::ffff:127.0.0.1]:1", true},
		{"0.0.0.0:1", false},
		{":1", false},
		{"[::]:1", false},
		{"localhost.example.com:1", false},
		{"127.0.0.1", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := Loopback(tt.addr); got != tt.want {
				t.Fatalf("Loopback(%q) = %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}

func TestParseSources(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		file  string // contents of a config file passed with -config, when set
		check func(t *testing.T, c Config)
	}{
		{
			name: "flags",
			args: []string{"-addr", "127.0.0.1:9000", "-max-payload", "2048", "-heartbeat", "3s", "-log-level", "debug", "-queue-size", "8"},
			check: func(t *testing.T, c Config) {
				want := Default()
				want.Addr, want.MaxPayload, want.Heartbeat, want.LogLevel, want.QueueSize = "127.0.0.1:9000", 2048, 3*time.Second, "debug", 8
				if c != want {
					t.Fatalf("got %+v\nwant %+v", c, want)
				}
			},
		},
		{
			name: "double-dash flags",
			args: []string{"--addr=0.0.0.0:9000", "--insecure"},
			check: func(t *testing.T, c Config) {
				if c.Addr != "0.0.0.0:9000" || !c.Insecure {
					t.Fatalf("Addr %q Insecure %v", c.Addr, c.Insecure)
				}
			},
		},
		{
			name: "env",
			env:  map[string]string{"HERALD_MAX_PAYLOAD": "4096", "HERALD_ADDR": "[::1]:7000", "HERALD_SQLITE_SYNC": "normal", "HERALD_MAX_CONNECTIONS_PER_USER": "3"},
			check: func(t *testing.T, c Config) {
				if c.MaxPayload != 4096 || c.Addr != "[::1]:7000" || c.SQLiteSync != "normal" || c.MaxConnectionsPerUser != 3 {
					t.Fatalf("got %+v", c)
				}
			},
		},
		{
			name: "flags win over env",
			args: []string{"-max-payload", "1000", "-addr", "127.0.0.1:1111"},
			env:  map[string]string{"HERALD_MAX_PAYLOAD": "4096", "HERALD_ADDR": "127.0.0.1:2222", "HERALD_LOG_FORMAT": "json"},
			check: func(t *testing.T, c Config) {
				if c.MaxPayload != 1000 || c.Addr != "127.0.0.1:1111" {
					t.Fatalf("flags lost: MaxPayload %d Addr %q", c.MaxPayload, c.Addr)
				}
				if c.LogFormat != "json" {
					t.Fatalf("env not applied where no flag was given: LogFormat %q", c.LogFormat)
				}
			},
		},
		{
			name: "config file",
			file: "# comment\naddr 127.0.0.1:3333\nmax-payload 5000\nretention 48h\nstore sqlite:///tmp/h.db\n\nlog-format json\n",
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:3333" || c.MaxPayload != 5000 || c.RetentionAge != 48*time.Hour ||
					c.Store != "sqlite:///tmp/h.db" || c.LogFormat != "json" {
					t.Fatalf("got %+v", c)
				}
				if p, _ := c.SQLitePath(); p != "/tmp/h.db" {
					t.Fatalf("SQLitePath = %q", p)
				}
			},
		},
		{
			name: "flags and env win over config file",
			args: []string{"-addr", "127.0.0.1:4444"},
			env:  map[string]string{"HERALD_MAX_PAYLOAD": "6000"},
			file: "addr 127.0.0.1:3333\nmax-payload 5000\nlog-level warn\n",
			check: func(t *testing.T, c Config) {
				if c.Addr != "127.0.0.1:4444" || c.MaxPayload != 6000 || c.LogLevel != "warn" {
					t.Fatalf("Addr %q MaxPayload %d LogLevel %q", c.Addr, c.MaxPayload, c.LogLevel)
				}
			},
		},
		{
			name: "config file from env",
			env:  map[string]string{"HERALD_CONFIG": "FILE"},
			file: "queue-size 17\n",
			check: func(t *testing.T, c Config) {
				if c.QueueSize != 17 {
					t.Fatalf("QueueSize %d", c.QueueSize)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			args := tt.args
			var path string
			if tt.file != "" {
				path = filepath.Join(t.TempDir(), "herald.conf")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				if tt.env["HERALD_CONFIG"] == "" {
					args = append([]string{"-config", path}, args...)
				}
			}
			for k, v := range tt.env {
				if v == "FILE" {
					v = path
				}
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			c, err := Parse("herald", args, &stderr)
			if err != nil {
				t.Fatalf("Parse: %v (stderr %q)", err, stderr.String())
			}
			tt.check(t, c)
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want []string // substrings of the error: the setting it names
	}{
		{name: "negative heartbeat", args: []string{"-heartbeat", "-1s"}, want: []string{"heartbeat"}},
		{name: "zero write-timeout", args: []string{"-write-timeout", "0s"}, want: []string{"write-timeout"}},
		{name: "negative retry", args: []string{"-retry", "-5ms"}, want: []string{"retry"}},
		{name: "negative shutdown-timeout", args: []string{"-shutdown-timeout", "-1m"}, want: []string{"shutdown-timeout"}},
		{name: "negative retention", args: []string{"-retention", "-1h"}, want: []string{"retention"}},
		{name: "negative retention-max", args: []string{"-retention-max", "-1"}, want: []string{"retention-max"}},
		{name: "zero prune-interval", args: []string{"-prune-interval", "0"}, want: []string{"prune-interval"}},
		{name: "zero idempotency-ttl", args: []string{"-idempotency-ttl", "0s"}, want: []string{"idempotency-ttl"}},
		{name: "negative idle-timeout", args: []string{"-idle-timeout", "-1s"}, want: []string{"idle-timeout"}},
		{name: "zero queue size", args: []string{"-queue-size", "0"}, want: []string{"queue-size"}},
		{name: "negative max-connections-per-user", args: []string{"-max-connections-per-user", "-1"}, want: []string{"max-connections-per-user"}},
		{name: "tiny max-body", args: []string{"-max-body", "10", "-max-payload", "4"}, want: []string{"max-body"}},
		{name: "tiny max-payload", args: []string{"-max-payload", "3"}, want: []string{"max-payload"}},
		{name: "max-payload above max-body", args: []string{"-max-payload", "2000000", "-max-body", "1048576"}, want: []string{"max-payload", "max-body"}},
		{name: "zero max-recipients", args: []string{"-max-recipients", "0"}, want: []string{"max-recipients"}},
		{name: "zero max-batch", args: []string{"-max-batch", "0"}, want: []string{"max-batch"}},
		{name: "max-request-recipients below max-recipients", args: []string{"-max-request-recipients", "999"}, want: []string{"max-request-recipients", "max-recipients"}},
		{name: "zero max-preference-rules", args: []string{"-max-preference-rules", "0"}, want: []string{"max-preference-rules"}},
		{name: "max-publish-inflight below the largest request", args: []string{"-max-publish-inflight", "49999"}, want: []string{"max-publish-inflight", "max-request-recipients"}},
		{name: "max-publish-inflight below a raised request limit", args: []string{"-max-request-recipients", "300000"}, want: []string{"max-publish-inflight"}},
		{name: "zero max-topic-subscribers", args: []string{"-max-topic-subscribers", "0"}, want: []string{"max-topic-subscribers"}},
		{name: "max-topic-subscribers above what a publish holds", args: []string{"-max-topic-subscribers", "100001", "-max-request-recipients", "150000"}, want: []string{"max-topic-subscribers", "100000"}},
		{name: "max-topic-subscribers above max-request-recipients", args: []string{"-max-request-recipients", "5000"}, want: []string{"max-topic-subscribers", "max-request-recipients"}},
		{name: "negative max-user-topics", args: []string{"-max-user-topics", "-1"}, want: []string{"max-user-topics"}},
		{name: "topic-self-subscribe with a space", args: []string{"-topic-self-subscribe", "public/,a b"}, want: []string{"topic-self-subscribe", "a b"}},
		{name: "topic-self-subscribe with a star", args: []string{"-topic-self-subscribe", "*"}, want: []string{"topic-self-subscribe"}},
		{name: "small max-header-bytes", args: []string{"-max-header-bytes", "100"}, want: []string{"max-header-bytes"}},
		{name: "unknown log level", args: []string{"-log-level", "verbose"}, want: []string{"log-level", "verbose"}},
		{name: "unknown log format", args: []string{"-log-format", "xml"}, want: []string{"log-format"}},
		{name: "store of an unknown kind", args: []string{"-store", "mysql://db/herald"}, want: []string{"store", "mysql"}},
		{name: "postgres without a host", args: []string{"-store", "postgres:///herald"}, want: []string{"store", "host"}},
		{name: "password kept out of errors", args: []string{"-store", "mysql://u:s3cret@db/herald"}, want: []string{"store", "xxx"}},
		{name: "redis without a host", args: []string{"-bus", "redis:///0"}, want: []string{"bus", "host"}},
		{name: "nats without a host", args: []string{"-bus", "nats://"}, want: []string{"bus", "host"}},
		{name: "one of several nats servers without a host", args: []string{"-bus", "nats://a:4222,nats://"}, want: []string{"bus", "host"}},
		{name: "bad bus channel", args: []string{"-bus-channel", "a b"}, want: []string{"bus-channel"}},
		{name: "zero resync interval", args: []string{"-resync-interval", "0s"}, want: []string{"resync-interval"}},
		{name: "store without path", args: []string{"-store", "sqlite:"}, want: []string{"store"}},
		{name: "store with empty URL path", args: []string{"-store", "sqlite://"}, want: []string{"store"}},
		{name: "store in a missing directory", args: []string{"-store", "sqlite:/nonexistent/dir/x.db"}, want: []string{"store", "/nonexistent/dir", "does not exist"}},
		{name: "store in memory", args: []string{"-store", "sqlite::memory:"}, want: []string{"store", "in-memory", "not durable"}},
		{name: "store in shared memory", args: []string{"-store", "sqlite:file:x?mode=memory&cache=shared"}, want: []string{"store", "in-memory"}},
		{name: "store in a file, not a directory", args: []string{"-store", "sqlite:/dev/null/x.db"}, want: []string{"store", "/dev/null", "not a directory"}},
		{name: "bus of an unknown kind", args: []string{"-bus", "kafka://localhost"}, want: []string{"bus", "kafka"}},
		{name: "bogus sqlite-sync", args: []string{"-sqlite-sync", "bogus"}, want: []string{"sqlite-sync", "bogus"}},
		{name: "addr without port", args: []string{"-addr", "127.0.0.1"}, want: []string{"addr"}},
		{name: "public addr", args: []string{"-addr", "0.0.0.0:8080"}, want: []string{"addr", "loopback"}},
		{name: "malformed duration", args: []string{"-heartbeat", "soon"}, want: []string{"heartbeat"}},
		{name: "malformed number", args: []string{"-queue-size", "many"}, want: []string{"queue-size"}},
		{name: "unknown flag", args: []string{"-no-such-flag"}, want: []string{"no-such-flag"}},
		{name: "positional args", args: []string{"serve", "now"}, want: []string{"unexpected arguments", "serve now"}},
		{name: "positional after flags", args: []string{"-addr", "127.0.0.1:1", "extra"}, want: []string{"unexpected arguments", "extra"}},
		{name: "bad env value", env: map[string]string{"HERALD_QUEUE_SIZE": "-3"}, want: []string{"queue-size"}},
		{name: "malformed env value", env: map[string]string{"HERALD_HEARTBEAT": "fast"}, want: []string{"heartbeat", "HERALD_HEARTBEAT"}},
		{name: "unknown name in config file", file: "no-such-setting 1\n", want: []string{"no-such-setting"}},
		{name: "bad value in config file", file: "bus redis\n", want: []string{"bus", "redis"}},
		{name: "missing config file", args: []string{"-config", "/nonexistent/herald.conf"}, want: []string{"herald.conf"}},
		{name: "secret twice", args: []string{"-jwt-secret", strings.Repeat("s", 32), "-jwt-secret-file", "/x"}, want: []string{"jwt-secret-file"}},
		{name: "short secret", env: map[string]string{"HERALD_JWT_SECRET": "short"}, want: []string{"jwt-secret", "32 bytes"}},
		{name: "publisher keys only", args: []string{"-publisher-keys", "a=sha256:00"}, want: []string{"publisher keys", "subscriber tokens"}},
		{name: "jwks over plain http", args: []string{"-jwks-url", "http://id.example.com/jwks.json"}, want: []string{"jwks-url", "https"}},
		{name: "jwks not a URL", args: []string{"-jwks-url", "id.example.com"}, want: []string{"jwks-url"}},
		{name: "cors wildcard", args: []string{"-cors-origins", "*"}, want: []string{"cors-origins"}},
		{name: "cors wildcard scheme", args: []string{"-cors-origins", "https://*"}, want: []string{"cors-origins", "wildcard"}},
		{name: "cors wildcard subdomain", args: []string{"-cors-origins", "https://*.example.com"}, want: []string{"cors-origins", "wildcard"}},
		{name: "cors with credentials", args: []string{"-cors-origins", "https://user:pw@app.example.com"}, want: []string{"cors-origins"}},
		{name: "jwks without audience", env: map[string]string{"HERALD_JWKS_URL": "https://id.example.com/jwks", "HERALD_JWT_ISSUER": "https://id.example.com"}, want: []string{"jwt-audience"}},
		{name: "cors with a path", args: []string{"-cors-origins", "https://app.example.com/x"}, want: []string{"cors-origins"}},
		{name: "tls cert without key", args: []string{"-tls-cert", "c.pem"}, want: []string{"tls-cert", "tls-key"}},
		{name: "negative publish rate", args: []string{"-publish-rate", "-1"}, want: []string{"publish-rate"}},
		{name: "negative max-connections", args: []string{"-max-connections", "-1"}, want: []string{"max-connections"}},
		{name: "negative max-tcp-connections", args: []string{"-max-tcp-connections", "-1"}, want: []string{"max-tcp-connections"}},
		{name: "tiny max-tcp-connections", args: []string{"-max-tcp-connections", "3"}, want: []string{"max-tcp-connections", "at least"}},
		{name: "streams not below the connection limit", args: []string{"-max-tcp-connections", "100", "-max-connections", "100"}, want: []string{"max-connections", "below", "max-tcp-connections"}},
		{name: "zero first-request-timeout", args: []string{"-first-request-timeout", "0s"}, want: []string{"first-request-timeout"}},
		{name: "leeway too long", env: map[string]string{"HERALD_JWT_SECRET": strings.Repeat("s", 32)}, args: []string{"-jwt-leeway", "1h"}, want: []string{"jwt-leeway"}},
		{name: "bad cookie name", env: map[string]string{"HERALD_JWT_SECRET": strings.Repeat("s", 32)}, args: []string{"-auth-cookie", "a;b"}, want: []string{"auth-cookie"}},
		{name: "allowed host with a port", args: []string{"-allowed-hosts", "herald.test:8080"}, want: []string{"allowed-hosts", "herald.test:8080"}},
		{name: "allowed host wildcard", args: []string{"-allowed-hosts", "localhost,*.herald.test"}, want: []string{"allowed-hosts", "*.herald.test"}},
		{name: "allowed host URL", args: []string{"-allowed-hosts", "http://herald.test"}, want: []string{"allowed-hosts"}},
		{name: "allowed hosts with auth", env: map[string]string{"HERALD_JWT_SECRET": strings.Repeat("s", 32)}, args: []string{"-allowed-hosts", "herald.test"}, want: []string{"allowed-hosts", "dev mode"}},
		{name: "metrics-addr without port", args: []string{"-metrics-addr", "127.0.0.1"}, want: []string{"metrics-addr"}},
		{name: "metrics-addr with a named port", args: []string{"-metrics-addr", "127.0.0.1:prom"}, want: []string{"metrics-addr", "port"}},
		{name: "metrics-addr port out of range", args: []string{"-metrics-addr", "127.0.0.1:70000"}, want: []string{"metrics-addr", "port"}},
		{name: "metrics-addr public in dev mode", args: []string{"-metrics-addr", "0.0.0.0:9090"}, want: []string{"metrics-addr", "loopback"}},
		{name: "metrics-addr is addr", args: []string{"-addr", "127.0.0.1:9090", "-metrics-addr", "127.0.0.1:9090"}, want: []string{"metrics-addr", "--addr"}},
		{
			name: "several at once",
			args: []string{"-queue-size", "0", "-log-level", "loud", "-bus", "kafka"},
			want: []string{"queue-size", "log-level", "bus"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if tt.file != "" {
				path := filepath.Join(t.TempDir(), "herald.conf")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"-config", path}, args...)
			}
			_, err := Parse("herald", args, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	cleanEnv(t)
	var stderr bytes.Buffer
	_, err := Parse("herald", []string{"-h"}, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, name := range []string{"-addr", "-insecure", "-allowed-hosts", "-metrics-addr", "-metrics-public", "-store", "-config", "-max-payload"} {
		if !strings.Contains(stderr.String(), name) {
			t.Errorf("usage does not mention %s", name)
		}
	}
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		store string
		want  string
		ok    bool
	}{
		{"sqlite:herald.db", "herald.db", true},
		{"sqlite:/abs/path.db", "/abs/path.db", true},
		{"sqlite:///abs/path.db", "/abs/path.db", true},
		{"sqlite:", "", false},
		{"sqlite://", "", false},
		{"sqlite3:x.db", "", false},
		{"herald.db", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.store, func(t *testing.T) {
			c := Config{Store: tt.store}
			got, err := c.SQLitePath()
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("SQLitePath() = %q, %v; want %q ok=%v", got, err, tt.want, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "store") {
				t.Fatalf("error %q does not name the setting", err)
			}
		})
	}
}
