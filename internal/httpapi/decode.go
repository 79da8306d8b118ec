package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/heraldhq/herald"
)

// strictJSON are the decoding options of every request body. They are JSON v2's defaults, spelt
// out because each is a decision:
//   - invalid UTF-8, and \u escapes of lone surrogates, are refused anywhere in the body, data
//     included. encoding/json turned both into U+FFFD: "to":["a\xffb"] addressed the user
//     "a\uFFFDb", and raw bytes that are not UTF-8 reached streams and inbox pages;
//   - a member name given twice, at any depth, is refused: readers disagree on which one counts
//     (encoding/json takes the last, others the first), so a check made by one reader, a proxy's
//     or the publisher's own, would not hold for the other;
//   - field names match in their case only: encoding/json took "TO" for "to";
//   - unknown fields are refused, so that a misspelt field is not silently ignored.
var strictJSON = json.JoinOptions(
	jsontext.AllowInvalidUTF8(false),
	jsontext.AllowDuplicateNames(false),
	json.MatchCaseInsensitiveNames(false),
	json.RejectUnknownMembers(true),
)

// jsonProblem describes a decoding error as " at <where>: <what>", without echoing more than a
// few bytes of the input.
func jsonProblem(err error) string {
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.As(err, &syntax):
		what := limitText(syntax.Err.Error(), 120)
		switch {
		case errors.Is(syntax.Err, jsontext.ErrDuplicateName):
			what = "the name is given twice"
		case errors.Is(syntax.Err, io.ErrUnexpectedEOF):
			what = "unexpected end of input"
		}
		return at(syntax.JSONPointer, syntax.ByteOffset) + ": " + what
	case errors.As(err, &semantic):
		where := at(semantic.JSONPointer, semantic.ByteOffset)
		switch {
		case errors.Is(semantic.Err, json.ErrUnknownName):
			return where + ": unknown field (names are case-sensitive)"
		case semantic.Err == nil && semantic.GoType != nil && semantic.JSONKind != 0:
			return fmt.Sprintf("%s: expected %s, not %s", where, jsonKind(semantic.GoType), kindName(semantic.JSONKind))
		case semantic.Err != nil:
			return where + ": " + limitText(semantic.Err.Error(), 120)
		}
		return where
	}
	return ": " + limitText(err.Error(), 120)
}

// at names where in the body a problem is: the field, as `"to[0]"`,
// `"notifications[2].type"` or `"actions[1].url"`; inside data, which is the publisher's own, the field and the JSON
// pointer within it, as `"data" (at /items/3)`; and the byte offset when there is no field.
func at(p jsontext.Pointer, offset int64) string {
	if p == "" {
		return fmt.Sprintf(" at byte %d", offset)
	}
	var field strings.Builder
	var inside jsontext.Pointer
	prev := ""
	for tok := range p.Tokens() {
		switch {
		case inside != "" || prev == "data":
			inside = inside.AppendToken(tok)
			continue
		case (prev == "to" || prev == "notifications" || prev == "actions") && isIndex(tok):
			field.WriteString("[" + tok + "]")
		default:
			if field.Len() > 0 {
				field.WriteByte('.')
			}
			field.WriteString(tok)
		}
		prev = tok
	}
	s := " at " + strconv.Quote(limitText(field.String(), 80))
	if inside != "" {
		s += " (at " + limitText(string(inside), 80) + ")"
	}
	return s
}

func isIndex(tok string) bool {
	if tok == "" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return false
		}
	}
	return true
}

// limitText makes s fit a message: valid UTF-8, at most n bytes.
func limitText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// kindName names a JSON kind the way jsonKind names a Go type.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "a list"
	}
	return k.String()
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return "a number"
	case reflect.Slice:
		k := jsonKind(t.Elem())
		if k == "an object" {
			return "a list of objects"
		}
		return "a list of " + strings.TrimPrefix(k, "a ") + "s"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// decodeSmall decodes a small JSON request body (not a publish: those stream, publishbody.go)
// into v with the same strictness and the same errors as a publish.
func decodeSmall(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body, err := jsonBody(w, r, limit)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return herald.Errorf(herald.EINVALID, "malformed JSON: empty body")
	}
	if err := json.Unmarshal(b, v, strictJSON); err != nil {
		return bodyError(err)
	}
	return nil
}
