package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/heraldhq/herald"
)

// clientError reports whether err is one a client may be given: nil, or an *herald.Error with a
// client-side code.
func clientError(err error) bool {
	switch herald.ErrorCode(err) {
	case "", herald.EINVALID, herald.ETOOLARGE:
		return true
	}
	return false
}

// checkDraft holds a draft that validation accepted to everything the store and the stream
// rely on.
func checkDraft(t *testing.T, a *API, d herald.Draft) {
	t.Helper()
	if d.Broadcast == (len(d.To) > 0) {
		t.Fatalf("draft is both or neither broadcast and addressed: %+v", d)
	}
	seen := map[string]bool{}
	for _, u := range d.To {
		if herald.ValidateUser(u) != nil || seen[u] {
			t.Fatalf("accepted recipient %q (duplicate: %v)", u, seen[u])
		}
		seen[u] = true
	}
	if herald.ValidateType(d.Type) != nil {
		t.Fatalf("accepted type %q", d.Type)
	}
	if !json.Valid(d.Data) || int64(len(d.Data)) > a.opts.MaxPayload {
		t.Fatalf("accepted data %q", d.Data)
	}
	var compact bytes.Buffer
	if json.Compact(&compact, d.Data) != nil || compact.Len() != len(d.Data) || bytes.ContainsAny(d.Data, "\r\n") {
		t.Fatalf("data %q is not compact: it would break SSE framing", d.Data)
	}
	if d.Key != "" && herald.ValidateKey(d.Key) != nil {
		t.Fatalf("accepted key %q", d.Key)
	}
}

func FuzzPublishBody(f *testing.F) {
	for _, s := range []string{
		`{"to":["alice"],"type":"comment","data":{"text":"hi\nthere"}}`,
		`{"broadcast":true}`, `{"to":["a","a","b"],"key":"k"}`, `{"to":[]}`, `{"to":["a"],"broadcast":false}`,
		`{"to":["a"],"data":"` + strings.Repeat("x", 100) + `"}`, `{"to":["a\u0000"]}`, `{"type":"herald.x","to":["a"]}`,
		`{"to":["a"]} trailing`, `[`, `{"to":null}`, `{"to":["a"],"data":1e999}`, `{"to":["a"],"unknown":1}`,
	} {
		f.Add([]byte(s))
	}
	a := New(Options{MaxPayload: 64, MaxRecipients: 4})
	f.Fuzz(func(t *testing.T, body []byte) {
		var req publishRequest
		if err := decodeStrict(body, &req); err != nil {
			if !clientError(err) {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		d, err := a.draft(&req, "")
		if err != nil {
			if !clientError(err) {
				t.Fatalf("draft: %v", err)
			}
			return
		}
		checkDraft(t, a, d)
	})
}

func FuzzBatchBody(f *testing.F) {
	for _, s := range []string{
		`{"notifications":[{"to":["a"]},{"broadcast":true,"type":"x"}]}`, `{"notifications":[]}`, `{}`,
		`{"notifications":[{"to":["a"]},{}]}`, `{"notifications":{"to":["a"]}}`, `{"notifications":[null]}`,
	} {
		f.Add([]byte(s))
	}
	a := New(Options{MaxPayload: 64, MaxRecipients: 4, MaxBatch: 3})
	f.Fuzz(func(t *testing.T, body []byte) {
		var req batchRequest
		if err := decodeStrict(body, &req); err != nil {
			if !clientError(err) {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		for i := range req.Notifications {
			d, err := a.draft(&req.Notifications[i], "notifications[0]: ")
			if err != nil {
				if !clientError(err) {
					t.Fatalf("draft: %v", err)
				}
				continue
			}
			checkDraft(t, a, d)
		}
	})
}

func FuzzParseTypes(f *testing.F) {
	for _, s := range []string{"a,b", "", ",", "a,,b", "herald.missed", "HERALD.missed", "a b", "x\ny", strings.Repeat("t,", 40), "é"} {
		f.Add(s, "c")
	}
	a := New(Options{})
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		filter, err := a.parseTypes([]string{v1, v2})
		if err != nil {
			if !clientError(err) {
				t.Fatalf("parseTypes: %v", err)
			}
			return
		}
		if len(filter) == 0 || len(filter) > a.opts.MaxTypes {
			t.Fatalf("accepted a filter of %d types", len(filter))
		}
		for typ := range filter {
			if herald.ValidateType(typ) != nil {
				t.Fatalf("accepted type %q", typ)
			}
		}
	})
}
