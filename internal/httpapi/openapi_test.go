package httpapi

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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
