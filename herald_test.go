package herald

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestValidateType(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"default type", DefaultType, true},
		{"all classes", "Order.Shipped:v2_x-y", true},
		{"one char", "a", true},
		{"digits", "123", true},
		{"64 chars", strings.Repeat("a", MaxTypeLen), true},
		{"herald without dot", "herald", true},
		{"herald inside", "x.herald.y", true},
		{"heraldic", "heraldic", true},
		{"empty", "", false},
		{"65 chars", strings.Repeat("a", MaxTypeLen+1), false},
		{"reserved prefix", "herald.missed", false},
		{"reserved prefix alone", "herald.", false},
		// The prefix is reserved whatever its case: clients compare event names in many ways,
		// and "HERALD.expired" must not pass for a control event.
		{"reserved prefix capitalised", "Herald.missed", false},
		{"reserved prefix upper case", "HERALD.expired", false},
		{"reserved prefix mixed case", "hErAlD.x", false},
		{"space", "order shipped", false},
		{"slash", "a/b", false},
		{"quote", `a"b`, false},
		{"backslash", `a\b`, false},
		{"newline", "a\nb", false},
		{"trailing newline", "a\n", false},
		{"leading newline", "\na", false},
		{"carriage return", "a\r", false},
		{"NUL", "a\x00", false},
		{"unicode letter", "café", false},
		{"invalid UTF-8", "a\xff", false},
		{"angle bracket", "<script>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateType(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateType(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ValidateType(%q) = nil, want an error", tt.in)
			}
			if code := ErrorCode(err); code != EINVALID {
				t.Fatalf("ErrorCode = %q, want %q", code, EINVALID)
			}
		})
	}
}

// validTypeReference is ValidateType written out by hand, as the fuzz target's oracle.
func validTypeReference(s string) bool {
	if len(s) < 1 || len(s) > MaxTypeLen || strings.HasPrefix(strings.ToLower(s), ControlPrefix) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

func FuzzValidateType(f *testing.F) {
	for _, s := range []string{
		"", "a", "notification", "herald.missed", "HERALD.expired", "Herald.", "herald", "a\n", "\na", "a b", "café",
		strings.Repeat("x", 64), strings.Repeat("x", 65), "a\xff", "A-Z_a.z:0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateType(s)
		if want := validTypeReference(s); (err == nil) != want {
			t.Fatalf("ValidateType(%q) = %v, want valid=%v", s, err, want)
		}
		if err != nil {
			if code := ErrorCode(err); code != EINVALID {
				t.Fatalf("ErrorCode = %q, want %q", code, EINVALID)
			}
			// The message must stay valid to print: bounded and quoted.
			if msg := ErrorMessage(err); len(msg) > 600 || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("message %q", msg)
			}
		}
	})
}

// invisibles are characters that change how an id is displayed, or hide part of it, without
// being seen: an id holding one can pass for another in a log line or an admin screen.
var invisibles = []struct {
	name string
	r    rune
}{
	{"NEL", '\u0085'},
	{"LINE SEPARATOR", '\u2028'},
	{"PARAGRAPH SEPARATOR", '\u2029'},
	{"LRM", '\u200e'},
	{"RLM", '\u200f'},
	{"ALM", '\u061c'},
	{"LRE", '\u202a'},
	{"RLE", '\u202b'},
	{"PDF", '\u202c'},
	{"LRO", '\u202d'},
	{"RLO", '\u202e'},
	{"LRI", '\u2066'},
	{"RLI", '\u2067'},
	{"FSI", '\u2068'},
	{"PDI", '\u2069'},
	{"ZERO WIDTH SPACE", '\u200b'},
	{"ZWNJ", '\u200c'},
	{"ZWJ", '\u200d'},
	{"WORD JOINER", '\u2060'},
	{"BOM", '\ufeff'},
	{"SOFT HYPHEN", '\u00ad'},
	{"MONGOLIAN VOWEL SEPARATOR", '\u180e'},
	{"INTERLINEAR ANNOTATION", '\ufff9'},
	{"TAG LATIN A", '\U000e0041'},
}

// idCase is a row of the user id and idempotency key tables.
type idCase struct {
	name string
	in   string
	ok   bool
}

// invisibleCases are rows refusing an id with each invisible character inside it.
func invisibleCases() []idCase {
	var rows []idCase
	for _, c := range invisibles {
		rows = append(rows, idCase{fmt.Sprintf("%s U+%04X", c.name, c.r), "ali" + string(c.r) + "ce", false})
	}
	return rows
}

func TestValidateUser(t *testing.T) {
	tests := []idCase{
		{"ascii", "alice", true},
		{"email-like", "alice@example.com", true},
		{"spaces inside", "Alice Smith", true},
		{"unicode", "Zoë-日本語-🚀", true},
		{"dot", "herald.x", true},
		{"256 bytes", strings.Repeat("u", MaxUserLen), true},
		{"256 bytes multibyte", strings.Repeat("é", MaxUserLen/2), true},
		{"NBSP (not a control)", "a\u00a0b", true},
		{"empty", "", false},
		{"257 bytes", strings.Repeat("u", MaxUserLen+1), false},
		{"258 bytes multibyte", strings.Repeat("é", MaxUserLen/2+1), false},
		{"NUL", "a\x00b", false},
		{"tab", "a\tb", false},
		{"newline", "alice\n", false},
		{"carriage return", "a\rb", false},
		{"escape", "a\x1b[31m", false},
		{"DEL", "a\x7f", false},
		{"C1 NEL", "a\u0085b", false},
		{"C1 CSI", "a\u009bb", false},
		{"C1 first", "\u0080", false},
		{"C1 last", "\u009f", false},
		{"invalid UTF-8", "a\xffb", false},
		{"truncated UTF-8", "\xe6\x97", false},
		{"overlong encoding", "\xc0\xaf", false},
		{"surrogate half", "\xed\xa0\x80", false},
		{"combining accent", "e\u0301", true},
		{"emoji without joiner", "🚀👩", true},
		{"invisible first", "\u200balice", false},
		{"invisible last", "alice\u200b", false},
		{"only invisible", "\ufeff", false},
	}
	tests = append(tests, invisibleCases()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateUser(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ValidateUser(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && ErrorCode(err) != EINVALID {
				t.Fatalf("ErrorCode = %q, want %q", ErrorCode(err), EINVALID)
			}
		})
	}
}

func TestValidateKey(t *testing.T) {
	tests := []idCase{
		{"uuid", "3f1c2a9e-8d7b-4c6a-9e5f-1a2b3c4d5e6f", true},
		{"one byte", "k", true},
		{"unicode", "ключ-🔑", true},
		{"spaces", "order 42 shipped", true},
		{"255 bytes", strings.Repeat("k", MaxKeyLen), true},
		{"empty", "", false},
		{"256 bytes", strings.Repeat("k", MaxKeyLen+1), false},
		{"newline", "k\n", false},
		{"NUL", "k\x00", false},
		{"DEL", "k\x7f", false},
		{"C1", "k\u0090", false},
		{"invalid UTF-8", "k\xfe", false},
	}
	tests = append(tests, invisibleCases()...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ValidateKey(%q) = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && ErrorCode(err) != EINVALID {
				t.Fatalf("ErrorCode = %q, want %q", ErrorCode(err), EINVALID)
			}
		})
	}
}

// visibleReference reports whether s is valid UTF-8 holding only characters that show: written
// out from the Unicode categories, as the oracle of the fuzz targets below.
func visibleReference(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// checkIDError holds a refusal of an id to what a client is shown: the invalid code and a
// message that prints on one line.
func checkIDError(t *testing.T, err error) {
	t.Helper()
	if code := ErrorCode(err); code != EINVALID {
		t.Fatalf("ErrorCode = %q, want %q", code, EINVALID)
	}
	if msg := ErrorMessage(err); len(msg) > 600 || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("message %q", msg)
	}
}

// idSeeds start the id fuzz targets: ordinary ids, each kind of invisible character, and
// broken UTF-8.
func idSeeds() []string {
	seeds := []string{"", "alice", "Zoë-日本語-🚀", "a b", "a\x00", "a\n", "a\xff", "\xed\xa0\x80", "e\u0301", "a\u00a0b"}
	for _, c := range invisibles {
		seeds = append(seeds, "a"+string(c.r))
	}
	return seeds
}

func FuzzValidateUser(f *testing.F) {
	for _, s := range idSeeds() {
		f.Add(s)
	}
	f.Add(strings.Repeat("u", MaxUserLen))
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateUser(s)
		want := s != "" && len(s) <= MaxUserLen && visibleReference(s)
		if (err == nil) != want {
			t.Fatalf("ValidateUser(%q) = %v, want valid=%v", s, err, want)
		}
		if err != nil {
			checkIDError(t, err)
		}
	})
}

func FuzzValidateKey(f *testing.F) {
	for _, s := range idSeeds() {
		f.Add(s)
	}
	f.Add(strings.Repeat("k", MaxKeyLen+1))
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateKey(s)
		want := s != "" && len(s) <= MaxKeyLen && visibleReference(s)
		if (err == nil) != want {
			t.Fatalf("ValidateKey(%q) = %v, want valid=%v", s, err, want)
		}
		if err != nil {
			checkIDError(t, err)
		}
	})
}

// TestDraftFingerprintTopic: a topic draft's exclusions are a set (order and repeats do not
// matter), while the topic and who is excluded do.
func TestDraftFingerprintTopic(t *testing.T) {
	base := Draft{Topic: "issue:42", Exclude: []string{"bob", "alice"}, Type: "comment", Data: json.RawMessage(`{}`)}
	same := []struct {
		name    string
		exclude []string
	}{
		{"reordered", []string{"alice", "bob"}},
		{"repeated", []string{"bob", "alice", "bob"}},
		{"reordered and repeated", []string{"alice", "alice", "bob", "alice"}},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			d := base
			d.Exclude = tt.exclude
			if !bytes.Equal(d.Fingerprint(), base.Fingerprint()) {
				t.Fatalf("exclude %q fingerprints unlike %q", tt.exclude, base.Exclude)
			}
		})
	}
	differs := []struct {
		name string
		d    Draft
	}{
		{"one fewer excluded", Draft{Topic: base.Topic, Exclude: []string{"bob"}, Type: base.Type, Data: base.Data}},
		{"none excluded", Draft{Topic: base.Topic, Type: base.Type, Data: base.Data}},
		{"another topic", Draft{Topic: "issue:43", Exclude: base.Exclude, Type: base.Type, Data: base.Data}},
		{"to the same users", Draft{To: []string{"issue:42"}, Type: base.Type, Data: base.Data}},
		{"excluded joined", Draft{Topic: base.Topic, Exclude: []string{"alicebob"}, Type: base.Type, Data: base.Data}},
	}
	for _, tt := range differs {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.d.Fingerprint(), base.Fingerprint()) {
				t.Fatalf("%+v fingerprints as %+v", tt.d, base)
			}
		})
	}
	// The caller's list is left as it was: the store reads it afterwards.
	d := Draft{Topic: "t", Exclude: []string{"b", "a", "b"}}
	d.Fingerprint()
	if got := d.Exclude; len(got) != 3 || got[0] != "b" || got[1] != "a" {
		t.Fatalf("Fingerprint changed Exclude to %q", got)
	}
}

func TestDraftFingerprintDiffers(t *testing.T) {
	base := Draft{To: []string{"alice", "bob"}, Type: "order.shipped", Data: json.RawMessage(`{"id":1}`)}
	tests := []struct {
		name string
		d    Draft
	}{
		{"To order", Draft{To: []string{"bob", "alice"}, Type: base.Type, Data: base.Data}},
		{"To subset", Draft{To: []string{"alice"}, Type: base.Type, Data: base.Data}},
		{"To superset", Draft{To: []string{"alice", "bob", "carol"}, Type: base.Type, Data: base.Data}},
		{"To duplicate", Draft{To: []string{"alice", "bob", "bob"}, Type: base.Type, Data: base.Data}},
		{"To joined", Draft{To: []string{"alicebob"}, Type: base.Type, Data: base.Data}},
		{"To split differently", Draft{To: []string{"alic", "ebob"}, Type: base.Type, Data: base.Data}},
		{"To empty string", Draft{To: []string{"alice", "bob", ""}, Type: base.Type, Data: base.Data}},
		{"broadcast", Draft{Broadcast: true, Type: base.Type, Data: base.Data}},
		{"broadcast and To", Draft{To: base.To, Broadcast: true, Type: base.Type, Data: base.Data}},
		{"type", Draft{To: base.To, Type: "order.cancelled", Data: base.Data}},
		{"type empty", Draft{To: base.To, Data: base.Data}},
		{"data", Draft{To: base.To, Type: base.Type, Data: json.RawMessage(`{"id":2}`)}},
		{"data spacing", Draft{To: base.To, Type: base.Type, Data: json.RawMessage(`{"id": 1}`)}},
		{"data empty", Draft{To: base.To, Type: base.Type}},
		// Fields shifted across boundaries: the encoding must keep them apart.
		{"recipient as type", Draft{To: []string{"alice"}, Type: "bob", Data: json.RawMessage("order.shipped")}},
		{"type into data", Draft{To: base.To, Type: "order.", Data: json.RawMessage(`shipped{"id":1}`)}},
	}
	want := base.Fingerprint()
	if len(want) != 32 {
		t.Fatalf("fingerprint is %d bytes, want 32 (SHA-256)", len(want))
	}
	seen := map[string]string{string(want): "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.Fingerprint()
			if bytes.Equal(got, want) {
				t.Fatalf("fingerprint of %+v equals the base draft's", tt.d)
			}
			if other, ok := seen[string(got)]; ok {
				t.Fatalf("fingerprint equals that of %q", other)
			}
			seen[string(got)] = tt.name
		})
	}
}

func TestDraftFingerprintStable(t *testing.T) {
	tests := []struct {
		name string
		a, b Draft
	}{
		{"same draft",
			Draft{To: []string{"alice"}, Type: "t", Data: json.RawMessage(`{"x":1}`)},
			Draft{To: []string{"alice"}, Type: "t", Data: json.RawMessage(`{"x":1}`)}},
		{"key is not part of the request",
			Draft{To: []string{"alice"}, Type: "t", Data: json.RawMessage(`1`), Key: "k1"},
			Draft{To: []string{"alice"}, Type: "t", Data: json.RawMessage(`1`), Key: "k2"}},
		{"copied slices",
			Draft{Broadcast: true, Type: "t", Data: json.RawMessage(`[1,2]`)},
			Draft{Broadcast: true, Type: "t", Data: append(json.RawMessage(nil), `[1,2]`...)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fa1, fa2, fb := tt.a.Fingerprint(), tt.a.Fingerprint(), tt.b.Fingerprint()
			if !bytes.Equal(fa1, fa2) {
				t.Fatalf("fingerprint changed between calls: %x then %x", fa1, fa2)
			}
			if !bytes.Equal(fa1, fb) {
				t.Fatalf("fingerprints differ: %x vs %x", fa1, fb)
			}
		})
	}
}

func TestErrorCodeAndMessage(t *testing.T) {
	secret := errors.New("dial tcp 10.0.0.7:5432: password authentication failed for user admin")
	tests := []struct {
		name     string
		err      error
		code     string
		message  string
		unwrapTo error // errors.Is(err, unwrapTo) must hold when set
	}{
		{"nil", nil, "", "internal error", nil},
		{"coded", Errorf(ENOTFOUND, "notification %d not found", 7), ENOTFOUND, "notification 7 not found", nil},
		{"wrapped coded", fmt.Errorf("handler: %w", Errorf(ECONFLICT, "key reused")), ECONFLICT, "key reused", nil},
		{"joined coded", errors.Join(io.EOF, Errorf(ETOOLARGE, "too big")), ETOOLARGE, "too big", nil},
		{"plain error", secret, EINTERNAL, "internal error", nil},
		{"internal", Internal(secret, "read inbox"), EINTERNAL, "internal error", secret},
		{"wrapped internal", fmt.Errorf("x: %w", Internal(secret, "read inbox")), EINTERNAL, "internal error", secret},
		{"coded with cause", &Error{Code: EUNAVAILABLE, Message: "store unavailable", Err: secret}, EUNAVAILABLE, "store unavailable", secret},
		{"explicit internal code", Errorf(EINTERNAL, "leaky detail %s", "SELECT * FROM x"), EINTERNAL, "internal error", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorCode(tt.err); got != tt.code {
				t.Fatalf("ErrorCode = %q, want %q", got, tt.code)
			}
			msg := ErrorMessage(tt.err)
			if msg != tt.message {
				t.Fatalf("ErrorMessage = %q, want %q", msg, tt.message)
			}
			for _, leak := range []string{"password", "10.0.0.7", "read inbox", "SELECT"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("ErrorMessage %q exposes %q", msg, leak)
				}
			}
			if tt.unwrapTo != nil && !errors.Is(tt.err, tt.unwrapTo) {
				t.Fatalf("errors.Is(%v, cause) = false", tt.err)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	cause := errors.New("disk full")
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"without cause", Errorf(EINVALID, "bad %s", "type"), "invalid: bad type"},
		{"with cause", Internal(cause, "append"), "internal: append: disk full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotificationBroadcast(t *testing.T) {
	tests := []struct {
		user string
		want bool
	}{
		{BroadcastStream, true},
		{"alice", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.user), func(t *testing.T) {
			n := Notification{User: tt.user}
			if n.Broadcast() != tt.want {
				t.Fatalf("Broadcast() = %v, want %v", n.Broadcast(), tt.want)
			}
		})
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
	}{
		{"short", "abc", 10},
		{"ascii cut", strings.Repeat("a", 100), 80},
		{"multibyte cut", strings.Repeat("日", 40), 80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.in, tt.n)
			if !utf8.ValidString(got) {
				t.Fatalf("truncate produced invalid UTF-8: %q", got)
			}
			if !strings.HasPrefix(tt.in, strings.TrimSuffix(got, "…")) {
				t.Fatalf("truncate(%q) = %q is not a prefix", tt.in, got)
			}
		})
	}
}

func TestFingerprintTopic(t *testing.T) {
	base := Draft{Topic: "issue:42", Exclude: []string{"bob"}, Type: "t", Data: []byte(`{}`)}
	same := base
	same.To = []string{"alice"} // the subscribers a store reached are not part of the request
	if !bytes.Equal(base.Fingerprint(), same.Fingerprint()) {
		t.Fatal("a topic draft's fingerprint depends on its expanded recipients")
	}
	for name, d := range map[string]Draft{
		"no exclusion":    {Topic: "issue:42", Type: "t", Data: []byte(`{}`)},
		"other topic":     {Topic: "issue:43", Exclude: []string{"bob"}, Type: "t", Data: []byte(`{}`)},
		"named recipient": {To: []string{"issue:42", "bob"}, Type: "t", Data: []byte(`{}`)},
	} {
		if bytes.Equal(base.Fingerprint(), d.Fingerprint()) {
			t.Errorf("%s: same fingerprint as the topic draft", name)
		}
	}
}
