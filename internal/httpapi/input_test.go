package httpapi

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldhq/herald"
)

// TestParseTypes: a subscriber's ?types= filter takes ordinary types as they are and refuses
// Herald's reserved prefix in any case, as a publisher's type is.
func TestParseTypes(t *testing.T) {
	a := New(Options{NoPark: true})
	tests := []struct {
		name   string
		values []string
		want   []string // nil: refused
	}{
		{"one", []string{"order.shipped"}, []string{"order.shipped"}},
		{"list and repeat", []string{"like,comment.created", "like"}, []string{"comment.created", "like"}},
		{"spaces around", []string{" a , b "}, []string{"a", "b"}},
		{"herald without dot", []string{"herald,Herald"}, []string{"Herald", "herald"}},
		{"herald-like prefixes", []string{"heraldic.x,x.herald.y"}, []string{"heraldic.x", "x.herald.y"}},
		{"reserved", []string{"herald.missed"}, nil},
		{"reserved in upper case", []string{"ok,HERALD.missed"}, nil},
		{"reserved capitalised", []string{"Herald.read"}, nil},
		{"not a type", []string{"a b"}, nil},
		{"empty", []string{","}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			filter, err := a.parseTypes(tt.values)
			if tt.want == nil {
				if err == nil || herald.ErrorCode(err) != herald.EINVALID {
					t.Fatalf("parseTypes(%q) = %v, %v; want an invalid error", tt.values, filter, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTypes(%q): %v", tt.values, err)
			}
			if got := slices.Sorted(maps.Keys(filter)); !slices.Equal(got, tt.want) {
				t.Fatalf("parseTypes(%q) = %q, want %q", tt.values, got, tt.want)
			}
		})
	}
}

// draftStore is a Store that keeps the drafts it is given and answers nothing else.
type draftStore struct {
	herald.Store
	drafts []herald.Draft
}

func (s *draftStore) Identity() herald.Identity {
	return herald.Identity{ID: "0123456789abcdef", Epoch: "1"}
}

func (s *draftStore) Append(_ context.Context, _ string, drafts []herald.Draft) ([]herald.Receipt, error) {
	s.drafts = append(s.drafts, drafts...)
	receipts := make([]herald.Receipt, len(drafts))
	for i, d := range drafts {
		receipts[i].Notifications = []herald.Notification{{ID: int64(len(s.drafts)*1000 + i), User: firstOr(d.To, "")}}
	}
	return receipts, nil
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// anyPublisher lets every request publish.
type anyPublisher struct{}

func (anyPublisher) Subscriber(*http.Request) (herald.Subscriber, error) {
	return herald.Subscriber{}, herald.Errorf(herald.EUNAUTHORIZED, "no subscribers here")
}
func (anyPublisher) Publisher(*http.Request) (herald.Publisher, error) {
	return herald.Publisher{ID: "p"}, nil
}

// postJSON sends body to the API's handler and returns the status, the error code and message
// ("" for none) and the drafts that reached the store.
func postJSON(t *testing.T, path, body string) (status int, code, message string, drafts []herald.Draft) {
	t.Helper()
	store := &draftStore{}
	a := New(Options{Store: store, Hub: nil, Auth: anyPublisher{}, NoPark: true})
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var answer struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("answer %q is not JSON: %v", rec.Body.Bytes(), err)
	}
	if !utf8.Valid(rec.Body.Bytes()) {
		t.Fatalf("answer %q is not UTF-8", rec.Body.Bytes())
	}
	return rec.Code, answer.Error.Code, answer.Error.Message, store.drafts
}

// TestPublishStrictJSON: a publish body is refused (400, invalid, naming the field) when JSON
// would let it mean something other than what its bytes say: invalid UTF-8 (which a lenient
// decoder turns into U+FFFD, so "a\xffb" would become another user, "a\uFFFDb"), an escaped
// lone surrogate (the same, spelt in ASCII), a field name in another case (which a lenient
// decoder matches anyway), or a name given twice (where one reader takes the first and another
// the last).
func TestPublishStrictJSON(t *testing.T) {
	const one, batch = "/v1/notifications", "/v1/notifications/batch"
	tests := []struct {
		name, path, body string
		field            string // the message must name it
	}{
		{"invalid UTF-8 in a user", one, "{\"to\":[\"a\xffb\"]}", `"to[0]"`},
		{"invalid UTF-8 in a later user", one, "{\"to\":[\"a\",\"b\xc3\"]}", `"to[1]"`},
		{"invalid UTF-8 in the type", one, "{\"to\":[\"a\"],\"type\":\"x\xfe\"}", `"type"`},
		{"invalid UTF-8 in the key", one, "{\"to\":[\"a\"],\"key\":\"k\xed\xa0\x80\"}", `"key"`},
		{"invalid UTF-8 in data", one, "{\"to\":[\"a\"],\"data\":\"\xff\"}", `"data"`},
		{"invalid UTF-8 deep in data", one, "{\"to\":[\"a\"],\"data\":{\"x\":[1,{\"y\":\"\xc0\xaf\"}]}}", `"data"`},
		{"invalid UTF-8 in a name in data", one, "{\"to\":[\"a\"],\"data\":{\"k\xff\":1}}", `"data"`},
		{"invalid UTF-8 in a field name", one, "{\"t\xffo\":[\"a\"]}", "UTF-8"},
		{"lone surrogate in a user", one, `{"to":["a\ud800"]}`, `"to[0]"`},
		{"lone surrogate in data", one, `{"to":["a"],"data":{"t":"\udc00x"}}`, `"data"`},
		{"reversed surrogate pair in data", one, `{"to":["a"],"data":"\ude00\ud83d"}`, `"data"`},
		{"invalid UTF-8 in a batch's user", batch, "{\"notifications\":[{\"to\":[\"a\"]},{\"to\":[\"a\",\"\x80\"]}]}", `"notifications[1].to[1]"`},
		{"invalid UTF-8 in a batch's data", batch, "{\"notifications\":[{\"to\":[\"a\"],\"data\":[\"\xff\"]}]}", `"notifications[0].data"`},
		{"field name in upper case", one, `{"TO":["a"]}`, `"TO"`},
		{"field name capitalised", one, `{"to":["a"],"Data":{}}`, `"Data"`},
		{"batch field name capitalised", batch, `{"Notifications":[{"to":["a"]}]}`, `"Notifications"`},
		{"field name in another case in a batch", batch, `{"notifications":[{"to":["a"]},{"Type":"x","to":["a"]}]}`, `"notifications[1].Type"`},
		{"duplicate to", one, `{"to":["a"],"to":["b"]}`, `"to"`},
		{"duplicate type", one, `{"to":["a"],"type":"x","type":"y"}`, `"type"`},
		{"duplicate null and value", one, `{"broadcast":null,"broadcast":true}`, `"broadcast"`},
		{"duplicate notifications", batch, `{"notifications":[{"to":["a"]}],"notifications":[{"to":["b"]}]}`, `"notifications"`},
		{"duplicate in a batch's notification", batch, `{"notifications":[{"to":["a"]},{"to":["a"],"key":"1","key":"2"}]}`, `"notifications[1].key"`},
		{"duplicate inside data", one, `{"to":["a"],"data":{"role":"user","role":"admin"}}`, `"data"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code, msg, drafts := postJSON(t, tt.path, tt.body)
			if status != http.StatusBadRequest || code != herald.EINVALID {
				t.Fatalf("got %d %q %q, want 400 %q", status, code, msg, herald.EINVALID)
			}
			if !strings.Contains(msg, tt.field) {
				t.Errorf("message %q does not name %s", msg, tt.field)
			}
			if len(drafts) > 0 {
				t.Errorf("stored %+v", drafts)
			}
		})
	}
}

// TestPublishKeepsData: data reaches the store as the publisher wrote it, only without the
// whitespace between tokens: escapes, number spellings, member order and characters that are
// not ASCII stay as they were.
func TestPublishKeepsData(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"absent", ``, `null`},
		{"null", `null`, `null`},
		{"spaced object", "{ \"b\" : 1 ,\n\t\"a\" : [ 1 , 2 ] }", `{"b":1,"a":[1,2]}`},
		{"escapes kept", `"\u00e9\n\ud83d\ude80\/\""`, `"\u00e9\n\ud83d\ude80\/\""`},
		{"raw characters kept", `"é🚀 <b>&amp;</b>"`, `"é🚀 <b>&amp;</b>"`},
		{"free text may hold invisible characters", "\"a\u202eb\u200d\u2028\"", "\"a\u202eb\u200d\u2028\""},
		{"number spellings kept", `[1.50, -0, 1e3, 1E+03, 12345678901234567890]`, `[1.50,-0,1e3,1E+03,12345678901234567890]`},
		{"same name at different levels", `{"a":{"a":1},"b":[{"a":2},{"a":3}]}`, `{"a":{"a":1},"b":[{"a":2},{"a":3}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"to":["alice"]}`
			if tt.data != "" {
				body = `{"to":["alice"],"data":` + tt.data + `}`
			}
			status, code, msg, drafts := postJSON(t, "/v1/notifications", body)
			if status != http.StatusCreated || len(drafts) != 1 {
				t.Fatalf("got %d %s %q, %d drafts", status, code, msg, len(drafts))
			}
			if got := string(drafts[0].Data); got != tt.want {
				t.Fatalf("data %s, want %s", got, tt.want)
			}
		})
	}
}
