package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

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
	// Valid as I-JSON (RFC 7493): UTF-8 throughout, no lone surrogate escape, no name twice.
	if !jsontext.Value(d.Data).IsValid() {
		t.Fatalf("accepted data %q that is not UTF-8, or names a member twice", d.Data)
	}
	if d.Content != nil {
		if d.Content.IsZero() || d.Content.Validate() != nil {
			t.Fatalf("accepted content %+v (none is nil)", *d.Content)
		}
		if enc := d.Content.AppendJSON(nil); !json.Valid(enc) || bytes.ContainsAny(enc, "\r\n") {
			t.Fatalf("content encodes as %q: not JSON, or it would break SSE framing", enc)
		}
	}
}

// FuzzDecodeStrict holds the request decoder to encoding/json, the decoder it replaced: what it
// accepts, encoding/json (with unknown fields refused) accepts too and decodes to the same
// request, and it is UTF-8 without a name given twice; what encoding/json accepts in such a body,
// it refuses only for a field name in another case, or for naming more users than it may.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"to":["alice"],"type":"t","data":{"a":[1,"\u00e9"]},"key":"k"}`, `{"broadcast":true,"data":null}`, `null`,
		"{\"to\":[\"a\xffb\"]}", `{"to":["\ud800"]}`, `{"to":["\ud83d\ude80"]}`, `{"TO":["a"]}`, `{"to":["a"],"Data":1}`,
		`{"to":["a"],"to":["b"]}`, `{"to":["a"],"data":{"k":1,"k":2}}`, `{"to":["a"],"data":{"k":{"k":1}}}`, `{"to":["a"]} x`,
		`{"to":"a"}`, `[]`, ` {"to" : [ "a" ] } `, `{"to":["a"],"data":1e999}`, `{"to":["a"],"data":"\u2028"}`,
		`{"to":["a"],"title":"t","body":"b","url":"/u","icon":"/i","avatar":"/a","actions":[{"label":"l","url":"/"}],"group":"g"}`,
		`{"to":["a"],"Title":"t"}`, `{"to":["a"],"actions":[{"LABEL":"l","url":"/"}]}`, `{"to":["a"],"actions":null,"title":null}`,
	} {
		f.Add([]byte(s))
	}
	type request struct {
		To        []string        `json:"to"`
		Broadcast *bool           `json:"broadcast"`
		Type      *string         `json:"type"`
		Title     string          `json:"title"`
		Body      string          `json:"body"`
		URL       string          `json:"url"`
		Icon      string          `json:"icon"`
		Avatar    string          `json:"avatar"`
		Actions   []herald.Action `json:"actions"`
		Group     string          `json:"group"`
		Data      json.RawMessage `json:"data"`
		Key       *string         `json:"key"`
	}
	a := New(Options{NoPark: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		strict, strictErr := a.newPublishBody(bytes.NewReader(body)).single()
		var lenient request
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		lenientErr := dec.Decode(&lenient)
		if lenientErr == nil {
			if _, err := dec.Token(); err != io.EOF {
				lenientErr = errors.New("trailing data")
			}
		}
		if strictErr != nil {
			code := herald.ErrorCode(strictErr)
			if code == herald.ETOOLARGE && strings.Contains(herald.ErrorMessage(strictErr), "--max-") {
				return
			}
			if code != herald.EINVALID {
				t.Fatalf("decode: %v", strictErr)
			}
			msg := herald.ErrorMessage(strictErr)
			if !utf8.ValidString(msg) || len(msg) > 400 {
				t.Fatalf("message %q", msg)
			}
			if lenientErr == nil && jsontext.Value(body).IsValid() && !strings.Contains(msg, "unknown field") {
				t.Fatalf("refused %q, which encoding/json accepts and is I-JSON: %s", body, msg)
			}
			return
		}
		if !utf8.Valid(body) || !jsontext.Value(body).IsValid() {
			t.Fatalf("accepted %q, which is not UTF-8 or names a member twice", body)
		}
		if lenientErr != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", body, lenientErr)
		}
		got := request{To: strict.To, Broadcast: strict.Broadcast, Type: strict.Type, Title: strict.Title, Body: strict.Body, URL: strict.URL,
			Icon: strict.Icon, Avatar: strict.Avatar, Actions: strict.Actions, Group: strict.Group, Data: json.RawMessage(strict.Data), Key: strict.Key}
		if len(got.To) == 0 && len(lenient.To) == 0 {
			got.To = lenient.To // [] and null: the draft tells them apart by nil, which both keep
		}
		if !reflect.DeepEqual(got, lenient) {
			t.Fatalf("%q decodes to %+v; encoding/json makes it %+v", body, got, lenient)
		}
	})
}

func FuzzPublishBody(f *testing.F) {
	for _, s := range []string{
		`{"to":["alice"],"type":"comment","data":{"text":"hi\nthere"}}`,
		`{"broadcast":true}`, `{"to":["a","a","b"],"key":"k"}`, `{"to":[]}`, `{"to":["a"],"broadcast":false}`,
		`{"to":["a"],"data":"` + strings.Repeat("x", 100) + `"}`, `{"to":["a\u0000"]}`, `{"type":"herald.x","to":["a"]}`,
		`{"to":["a"]} trailing`, `[`, `{"to":null}`, `{"to":["a"],"data":1e999}`, `{"to":["a"],"unknown":1}`,
		"{\"to\":[\"a\xffb\"]}", "{\"to\":[\"a\"],\"data\":[\"\xc0\xaf\"]}", `{"to":["a"],"data":"\udc00"}`, `{"TO":["a"]}`,
		`{"to":["a"],"type":"x","type":"y"}`, `{"to":["a"],"data":{"k":1,"k":2}}`, `{"to":["a\u202eb"]}`, `{"to":["a"],"type":"HERALD.x"}`,
		`{"to":["a"],"title":"Bob","body":"<b>x</b>\n","url":"https://example.com/p","icon":"/i","actions":[{"label":"Open","url":"/p"}],"group":"p:1"}`,
		`{"to":["a"],"url":" javascript:alert(1)"}`, `{"to":["a"],"url":"//evil"}`, `{"to":["a"],"url":"/\\evil"}`, `{"to":["a"],"title":"a\u202eb"}`,
		`{"to":["a"],"actions":[{"label":"a","url":"/"},{"label":"b","url":"/"},{"label":"c","url":"/"},{"label":"d","url":"/"}]}`,
	} {
		f.Add([]byte(s))
	}
	a := New(Options{MaxPayload: 64, MaxRecipients: 4})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := a.newPublishBody(bytes.NewReader(body)).single()
		if err != nil {
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
		"{\"notifications\":[{\"to\":[\"\xff\"]}]}", `{"Notifications":[{"to":["a"]}]}`, `{"notifications":[{"to":["a"],"To":["b"]}]}`,
		`{"notifications":[{"to":["a"]}],"notifications":[]}`, `{"notifications":[{"to":["a"],"key":"1","key":"1"}]}`,
		`{"notifications":[{"to":["a","b","c"]},{"to":["d","e","f"]},{"to":["g"]}]}`, `{"notifications":null,"notifications":[{"broadcast":true}]}`,
		`{"notifications":[{"to":["a"]}]} x`, `null`, `[]`, `{"notifications":[{"to":["a"]}],"other":1}`,
		`{"notifications":[{"to":["a"],"title":"t","url":"/u"},{"broadcast":true,"actions":[{"label":"l","url":"data:x"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	a := New(Options{MaxPayload: 64, MaxRecipients: 4, MaxBatch: 3, MaxRequestRecipients: 6})
	f.Fuzz(func(t *testing.T, body []byte) {
		var drafts []herald.Draft
		named := 0
		err := a.newPublishBody(bytes.NewReader(body)).batch(a.opts.MaxBatch, func(i int, req *publishRequest) error {
			named += max(1, len(req.To))
			d, err := a.draft(req, fmt.Sprintf("notifications[%d]: ", i))
			drafts = append(drafts, d)
			return err
		})
		if err != nil {
			if !clientError(err) {
				t.Fatalf("decode: %v", err)
			}
			return
		}
		if len(drafts) == 0 || len(drafts) > a.opts.MaxBatch || named > a.opts.MaxRequestRecipients {
			t.Fatalf("accepted %d notifications naming %d users", len(drafts), named)
		}
		for _, d := range drafts {
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
