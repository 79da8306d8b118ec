package validate

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unitFile = "../herald.service"

// unit is a systemd unit file's settings: section.Key → values in order (a key may repeat).
type unit map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	return u
}

func (u unit) last(key string) string {
	if v := u[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// env returns the unit's Environment= assignments.
func (u unit) env() map[string]string {
	out := map[string]string{}
	for _, line := range u["Service.Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

// TestSystemdUnit: deploy/herald.service runs herald serve hardened, on its state directory,
// with its secrets as credentials, and enough time and descriptors for a drain.
func TestSystemdUnit(t *testing.T) {
	u := readUnit(t, unitFile)
	flags := serveFlags(t)
	env := u.env()

	exec := strings.Fields(u.last("Service.ExecStart"))
	if len(exec) < 2 || !filepath.IsAbs(exec[0]) || filepath.Base(exec[0]) != "herald" || exec[1] != "serve" {
		t.Errorf("ExecStart=%v, want /…/herald serve", exec)
	}
	for name, value := range env {
		setting, ok := strings.CutPrefix(name, "HERALD_")
		if !ok {
			continue
		}
		if flag := strings.ReplaceAll(strings.ToLower(setting), "_", "-"); !flags[flag] {
			t.Errorf("Environment=%s: herald serve has no --%s", name, flag)
		}
		if strings.Contains(name, "SECRET") && !strings.HasSuffix(name, "_FILE") || name == "HERALD_PUBLISHER_KEYS" {
			t.Errorf("Environment=%s=%s: a secret in the unit file (use LoadCredential=)", name, value)
		}
	}

	// The user and where it may write.
	if u.last("Service.DynamicUser") != "yes" && u.last("Service.User") == "" {
		t.Error("runs as root: want DynamicUser=yes or a User=")
	}
	state := u.last("Service.StateDirectory")
	store, ok := strings.CutPrefix(env["HERALD_STORE"], "sqlite:")
	if state == "" || !ok || filepath.Dir(store) != "/var/lib/"+state {
		t.Errorf("the SQLite store %q is not in StateDirectory=%s, the one place ProtectSystem=strict leaves writable", env["HERALD_STORE"], state)
	}
	for key, want := range map[string]string{
		"ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectHome": "yes",
		"CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
	} {
		if got := u["Service."+key]; len(got) == 0 || u.last("Service."+key) != want {
			t.Errorf("%s=%v, want %q", key, got, want)
		}
	}

	// Secrets: credentials that systemd reads as root and hands to the service alone.
	creds := map[string]string{}
	for _, c := range u["Service.LoadCredential"] {
		id, path, _ := strings.Cut(c, ":")
		creds[id] = path
	}
	for _, name := range []string{"HERALD_JWT_SECRET_FILE", "HERALD_PUBLISHER_KEY_FILE"} {
		id, ok := strings.CutPrefix(env[name], "%d/")
		if !ok || creds[id] == "" {
			t.Errorf("%s=%q is not a LoadCredential= credential (%%d/ID)", name, env[name])
		}
	}

	// Stopping: the drain window and the shutdown timeout fit in TimeoutStopSec.
	stop, err := time.ParseDuration(u.last("Service.TimeoutStopSec"))
	drain, err2 := time.ParseDuration(env["HERALD_DRAIN_WINDOW"])
	shutdown, err3 := time.ParseDuration(env["HERALD_SHUTDOWN_TIMEOUT"])
	if err != nil || err2 != nil || err3 != nil || stop < drain+shutdown {
		t.Errorf("TimeoutStopSec=%s is shorter than the drain window %s and shutdown timeout %s (%v %v %v)",
			u.last("Service.TimeoutStopSec"), drain, shutdown, err, err2, err3)
	}
	if sig := u.last("Service.KillSignal"); sig != "" && sig != "SIGTERM" && sig != "SIGINT" {
		t.Errorf("KillSignal=%s does not drain", sig)
	}

	// Descriptors: --max-connections (the limit less 1024 by default, for the store, the bus
	// and the metrics listener) must fit.
	nofile, err := strconv.Atoi(u.last("Service.LimitNOFILE"))
	if err != nil || nofile < 4096 {
		t.Errorf("LimitNOFILE=%q: want a number well above the 1024 Herald reserves", u.last("Service.LimitNOFILE"))
	}
	if mc, ok := env["HERALD_MAX_CONNECTIONS"]; ok {
		if n, _ := strconv.Atoi(mc); n+1024 > nofile {
			t.Errorf("HERALD_MAX_CONNECTIONS=%s does not fit LimitNOFILE=%d less 1024", mc, nofile)
		}
	}
	if addr := env["HERALD_ADDR"]; !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "[::1]:") {
		t.Errorf("HERALD_ADDR=%s: behind nginx on the host, listen on loopback", addr)
	}
}

// TestSystemdAnalyze: systemd's own checks. verify loads the unit as systemd would (every key
// known, the binary where ExecStart says, its dependencies found) in a root of its own, so the
// test needs no installed herald; security scores the hardening offline.
func TestSystemdAnalyze(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	need(t, err == nil, "systemd-analyze is not installed (Debian: apt-get install systemd)")
	out, err := exec.Command(bin, "--version").CombinedOutput()
	need(t, err == nil, "systemd-analyze cannot run here: %v %s", err, out)
	t.Logf("%s", strings.SplitN(string(out), "\n", 2)[0])

	// A root holding the herald binary at ExecStart's path and the host's targets and slices,
	// which the unit's dependencies name.
	root := t.TempDir()
	u := readUnit(t, unitFile)
	execPath := strings.Fields(u.last("Service.ExecStart"))[0]
	if err := copyFile(heraldBinary(t), filepath.Join(root, execPath), 0o755); err != nil {
		t.Fatal(err)
	}
	units := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(units, 0o755); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} { // one dir where /lib is /usr/lib
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			name := e.Name()
			if found[name] || !e.Type().IsRegular() || !strings.HasSuffix(name, ".target") && !strings.HasSuffix(name, ".slice") {
				continue
			}
			if err := copyFile(filepath.Join(dir, name), filepath.Join(units, name), 0o644); err != nil {
				t.Fatal(err)
			}
			found[name] = true
		}
	}
	need(t, len(found) > 0, "no systemd targets in /usr/lib/systemd/system: systemd-analyze verify would find no dependencies")

	// verify finds the unit only inside the root, as installed there.
	installed := filepath.Join(root, "etc/systemd/system", filepath.Base(unitFile))
	if err := copyFile(unitFile, installed, 0o644); err != nil {
		t.Fatal(err)
	}
	// verify reports unknown keys and bad values as warnings and still exits 0: any output fails.
	out, err = exec.Command(bin, "verify", "--root="+root, installed).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// Exposure below 2.0 (systemd's "OK"), in tenths.
	out, err = exec.Command(bin, "security", "--offline=true", "--threshold=20", installed).CombinedOutput()
	score := regexp.MustCompile(`Overall exposure level for \S+: (.*)`).FindSubmatch(out)
	if err != nil || score == nil {
		t.Errorf("systemd-analyze security: %v\n%s", err, out)
	} else {
		t.Logf("exposure %s", score[1])
	}
	var weak []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "✗") {
			weak = append(weak, strings.Join(strings.Fields(line)[:2], " "))
		}
	}
	slices.Sort(weak)
	t.Logf("left open: %s", strings.Join(weak, "; "))
}

// copyFile copies from into a new file, to. Never a hard link, and never over an existing file:
// either could write through to the host's own files.
func copyFile(from, to string, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
