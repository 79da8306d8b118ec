package httpapi

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/heraldhq/herald"
)

// openAPIFile is the API's OpenAPI document, relative to this package.
const openAPIFile = "../../docs/openapi.yaml"

// errorSchemaRef is the shared error schema every operation's error responses use.
const errorSchemaRef = "#/components/schemas/Error"

// openAPIMethods are the keys of an OpenAPI path item that are operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

type openAPIOperation struct {
	route string // "METHOD /path", as Routes() spells it
	path  string
	op    map[string]any
	item  map[string]any
}

// loadOpenAPI parses the document and lists its operations.
func loadOpenAPI(t *testing.T) (map[string]any, []openAPIOperation) {
	t.Helper()
	b, err := os.ReadFile(openAPIFile)
	if err != nil {
		t.Fatalf("read the OpenAPI document: %v", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse %s: %v", openAPIFile, err)
	}
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatalf("%s has no paths object", openAPIFile)
	}
	var ops []openAPIOperation
	for path, v := range paths {
		item, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("paths[%q] is not an object", path)
		}
		for _, m := range openAPIMethods {
			if op, ok := item[m].(map[string]any); ok {
				ops = append(ops, openAPIOperation{route: strings.ToUpper(m) + " " + path, path: path, op: op, item: item})
			}
		}
	}
	slices.SortFunc(ops, func(a, b openAPIOperation) int { return strings.Compare(a.route, b.route) })
	return doc, ops
}

// openAPIResolve follows local $refs ("#/components/...") until it reaches an object without one.
func openAPIResolve(doc map[string]any, v any) (map[string]any, error) {
	for range 16 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		if v, ok = openAPILookup(doc, ref); !ok {
			return nil, fmt.Errorf("$ref %q points nowhere", ref)
		}
	}
	return nil, fmt.Errorf("$ref chain too long")
}

// openAPILookup finds a local JSON pointer reference in doc.
func openAPILookup(doc map[string]any, ref string) (any, bool) {
	pointer, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var cur any = doc
	for _, tok := range strings.Split(pointer, "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestOpenAPIVersion(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	v, _ := doc["openapi"].(string)
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Errorf("openapi is %q, want 3.1.x", v)
	}
}

// TestOpenAPIRoutes holds the document and the server to the same routes: a route added without
// documentation, or documented without being served, fails here.
func TestOpenAPIRoutes(t *testing.T) {
	_, ops := loadOpenAPI(t)
	documented := map[string]bool{}
	for _, op := range ops {
		documented[op.route] = true
	}
	served := map[string]bool{}
	for _, r := range New(Options{}).Routes() {
		if method, _, ok := strings.Cut(r, " "); !ok || method == "" || strings.HasPrefix(method, "/") {
			t.Errorf("route %q has no method; every route must name one so it can be documented", r)
		}
		if served[r] {
			t.Errorf("route %q is registered twice", r)
		}
		served[r] = true
	}
	if len(served) == 0 {
		t.Fatal("Routes() returned nothing")
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("route %q is served but not documented in %s", r, openAPIFile)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("%s documents %q, which the server does not serve", openAPIFile, r)
		}
	}
}

// TestOpenAPIOperations checks what every documented operation must say: its error responses, in
// the shared Error schema, and its path parameters.
func TestOpenAPIOperations(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	if _, ok := openAPILookup(doc, errorSchemaRef); !ok {
		t.Fatalf("%s does not define %s", openAPIFile, errorSchemaRef)
	}
	placeholder := regexp.MustCompile(`\{([^}]+)\}`)
	for _, op := range ops {
		t.Run(op.route, func(t *testing.T) {
			responses, ok := op.op["responses"].(map[string]any)
			if !ok || len(responses) == 0 {
				t.Fatal("no responses")
			}
			var errorResponses int
			for status, v := range responses {
				resp, err := openAPIResolve(doc, v)
				if err != nil {
					t.Errorf("response %s: %v", status, err)
					continue
				}
				if _, ok := resp["description"].(string); !ok {
					t.Errorf("response %s has no description", status)
				}
				if !strings.HasPrefix(status, "4") && !strings.HasPrefix(status, "5") {
					continue
				}
				content, _ := resp["content"].(map[string]any)
				media, _ := content["application/json"].(map[string]any)
				schema, _ := media["schema"].(map[string]any)
				if ref, _ := schema["$ref"].(string); ref != errorSchemaRef {
					t.Errorf("error response %s does not use %s as its application/json schema", status, errorSchemaRef)
					continue
				}
				errorResponses++
			}
			if errorResponses == 0 {
				t.Errorf("documents no error response (4xx or 5xx with the %s schema)", errorSchemaRef)
			}
			// An operation that needs credentials says what happens without them, or with the
			// wrong ones.
			security, overridden := op.op["security"].([]any)
			if !overridden {
				security, _ = doc["security"].([]any)
			}
			if len(security) > 0 {
				for _, status := range []string{"401", "403"} {
					if _, ok := responses[status]; !ok {
						t.Errorf("needs credentials but does not document %s", status)
					}
				}
			}

			// Every {placeholder} of the path is a declared path parameter.
			declared := map[string]bool{}
			var params []any
			if ps, ok := op.item["parameters"].([]any); ok {
				params = append(params, ps...)
			}
			if ps, ok := op.op["parameters"].([]any); ok {
				params = append(params, ps...)
			}
			for i, v := range params {
				p, err := openAPIResolve(doc, v)
				if err != nil {
					t.Errorf("parameter %d: %v", i, err)
					continue
				}
				if p["in"] == "path" {
					name, _ := p["name"].(string)
					declared[name] = true
				}
			}
			for _, m := range placeholder.FindAllStringSubmatch(op.path, -1) {
				if !declared[m[1]] {
					t.Errorf("path parameter {%s} is not declared", m[1])
				}
			}
		})
	}
}

// TestOpenAPIIdentifierPatterns holds the document's patterns for user ids, idempotency keys and
// types to the validators the server runs: a client that checks input against the document
// accepts what the server accepts. Lengths are left out (the document counts characters, the
// server bytes), and so is invalid UTF-8, which no JSON string can hold.
func TestOpenAPIIdentifierPatterns(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	samples := []string{
		"alice", "Alice Smith", "alice@example.com", "Zoë-日本語-🚀", "e\u0301", "a\u00a0b", "�",
		"order.shipped", "notification", "herald", "heraldic", "herald.missed", "Herald.missed",
		"HERALD.expired", "x.herald.y", "a b", "café", "a/b", `a"b`,
		"a\x00b", "a\tb", "a\nb", "a\x7f", "a\u0085b", "a\u009fb",
		"a\u2028b", "a\u2029b", "a\u200eb", "a\u200fb", "a\u061cb", "a\u202ab", "a\u202eb",
		"a\u2066b", "a\u2069b", "a\u200bb", "a\u200cb", "a\u200db", "a\u2060b", "\ufeffa", "a\u00adb",
		"a\u180eb", "a\ufff9b", "a\U000e0041b", "a\U000e0001",
	}
	tests := []struct {
		schema   string
		validate func(string) error
	}{
		{"UserID", herald.ValidateUser},
		{"IdempotencyKey", herald.ValidateKey},
		{"NotificationType", herald.ValidateType},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			schema, err := openAPIResolve(doc, map[string]any{"$ref": "#/components/schemas/" + tt.schema})
			if err != nil {
				t.Fatal(err)
			}
			pattern, _ := schema["pattern"].(string)
			if pattern == "" {
				t.Fatal("no pattern")
			}
			match := ecmaRegexp(t, pattern).MatchString
			var notMatch func(string) bool
			if not, ok := schema["not"].(map[string]any); ok {
				p, _ := not["pattern"].(string)
				notMatch = ecmaRegexp(t, p).MatchString
			}
			for _, s := range samples {
				documented := match(s) && (notMatch == nil || !notMatch(s))
				if served := tt.validate(s) == nil; documented != served {
					t.Errorf("%+q: the document says valid=%v, the server %v", s, documented, served)
				}
			}
		})
	}
}

// ecmaRegexp compiles a pattern of the document, ECMA-262 with the u flag, as Go's syntax: the
// same for classes, \p{..} categories and anchors once \uXXXX escapes are spelt \x{XXXX}.
func ecmaRegexp(t *testing.T, pattern string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(regexp.MustCompile(`\\u([0-9A-Fa-f]{4})`).ReplaceAllString(pattern, `\x{$1}`))
	if err != nil {
		t.Fatalf("pattern %q: %v", pattern, err)
	}
	return re
}

// TestOpenAPIContent holds the document to the content the server takes and sends: the publish
// request lists every field the decoder knows, the envelope every member appendEnvelope writes,
// and the patterns of text and group keys say what the server accepts (lengths and invalid
// UTF-8 left out, as for identifiers). The URL pattern is only the necessary part of the rules:
// whatever the server accepts matches it, and what makes a URL dangerous does not.
func TestOpenAPIContent(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	schema := func(name string) map[string]any {
		t.Helper()
		s, err := openAPIResolve(doc, map[string]any{"$ref": "#/components/schemas/" + name})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	properties := func(name string) []string {
		props, _ := schema(name)["properties"].(map[string]any)
		return slices.Sorted(maps.Keys(props))
	}
	var fields []string
	for f := range reflect.TypeFor[publishRequest]().Fields() {
		fields = append(fields, strings.Split(f.Tag.Get("json"), ",")[0])
	}
	if slices.Sort(fields); !slices.Equal(properties("PublishRequest"), fields) {
		t.Errorf("PublishRequest documents %q; the server decodes %q", properties("PublishRequest"), fields)
	}
	n := herald.Notification{ID: 1, Type: "t", Data: []byte("1"), Content: &herald.Content{Title: "t", Body: "b", URL: "/u", Icon: "/i",
		Avatar: "/a", Actions: []herald.Action{{Label: "l", URL: "/"}}, Group: "g"}, Topic: "issue:42", Critical: true}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(appendEnvelope(nil, &n), &env); err != nil {
		t.Fatal(err)
	}
	if got, want := properties("Envelope"), slices.Sorted(maps.Keys(env)); !slices.Equal(got, want) {
		t.Errorf("Envelope documents %q; the server writes %q", got, want)
	}
	if got := properties("Action"); !slices.Equal(got, []string{"label", "url"}) {
		t.Errorf("Action documents %q", got)
	}

	samples := []string{
		"", "hello", "Bob commented <b>here</b>", "<script>alert(1)</script>", "a\nb", "a\r\nb", "a\tb", "a\x00",
		"a\x7f", "a\u0085b", "a\u2028b", "a\u2029b", "a\u061cb", "a\u200eb", "a\u200fb", "a\u202ab", "a\u202eb", "a\u2066b",
		"a\u2069b", "👨\u200d👩\u200d👧", "a\u200cb", "a\u00adb", "\ufeffa", "a\U000e0041b", "שלום", "\ufffd",
		"post:42:comments", "org/acme", "a b", "café", "x.y-z_1",
	}
	text := func(multiline bool) func(string) bool {
		return func(s string) bool {
			c := herald.Content{Title: s}
			if multiline {
				c = herald.Content{Body: s}
			}
			return c.Validate() == nil
		}
	}
	for _, tt := range []struct {
		schema string
		valid  func(string) bool
	}{
		{"NotificationTitle", text(false)},
		{"NotificationBody", text(true)},
		{"NotificationGroup", func(s string) bool { c := herald.Content{Group: s}; return s != "" && c.Validate() == nil }},
	} {
		t.Run(tt.schema, func(t *testing.T) {
			pattern, _ := schema(tt.schema)["pattern"].(string)
			match := ecmaRegexp(t, pattern).MatchString
			for _, s := range samples {
				if documented, served := match(s), tt.valid(s); documented != served {
					t.Errorf("%+q: the document says valid=%v, the server %v", s, documented, served)
				}
			}
		})
	}
	t.Run("NotificationURL", func(t *testing.T) {
		pattern, _ := schema("NotificationURL")["pattern"].(string)
		match := ecmaRegexp(t, pattern).MatchString
		for _, s := range []string{"/", "/a?b#c", "https://example.com", "http://localhost:8080/x", "https://[::1]/", "https://例え.jp/パス", "/javascript:x"} {
			if herald.ValidateURL(s) != nil || !match(s) {
				t.Errorf("%+q: the server accepts it (%v) and the document (%v) must too", s, herald.ValidateURL(s), match(s))
			}
		}
		for _, s := range []string{
			"javascript:alert(1)", "JaVaScRiPt:x", " javascript:x", "java\tscript:x", "data:text/html,x", "vbscript:x", "//evil.example",
			`/\evil.example`, `\\evil`, "https://", "https:///x", "https://@evil", "HTTPS://x", "https:evil", "/a b", "https://x/\u202e",
			"evil.example", "", `/"x`,
		} {
			if herald.ValidateURL(s) == nil || match(s) {
				t.Errorf("%+q: the server refuses it (%v) and the document must not match it (%v)", s, herald.ValidateURL(s), match(s))
			}
		}
	})
}
