package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/heraldhq/herald"
)

// A publish body is decoded as it arrives, one notification at a time, rather than read whole
// and then decoded: the body, its decoded form and the drafts are never all held at once, and
// a request over a limit is refused at the name that crosses it, without reading or holding the
// rest. The decoding is strictJSON throughout; the JSON decoder keeps track of names given twice
// across the whole body, and refuses invalid UTF-8 in it.

// jsonBody checks the content type and declared length of a publish request and returns its
// body, limited to limit bytes.
func jsonBody(w http.ResponseWriter, r *http.Request, limit int64) (io.Reader, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, herald.Errorf(herald.EUNSUPPORTED, "send the body as Content-Type: application/json")
	}
	if r.ContentLength > limit {
		return nil, herald.Errorf(herald.ETOOLARGE, "the body is %d bytes; the limit is %d", r.ContentLength, limit)
	}
	return http.MaxBytesReader(w, r.Body, limit), nil
}

// recipientBudget counts the users a request names while it is decoded, each name in each "to"
// and a broadcast as one, against the limits of one notification and of the whole request.
type recipientBudget struct {
	perNotification int // MaxRecipients
	perRequest      int // MaxRequestRecipients

	inNotification, inRequest int
	// overRequest is set when the request's limit was crossed: that error is the request's, not
	// one notification's.
	overRequest bool
}

// add counts n more recipients of the current notification.
func (b *recipientBudget) add(n int) error {
	b.inNotification += n
	b.inRequest += n
	switch {
	case b.inNotification > b.perNotification:
		return herald.Errorf(herald.ETOOLARGE, "\"to\" holds at most %d users (--max-recipients)", b.perNotification)
	case b.inRequest > b.perRequest:
		b.overRequest = true
		return herald.Errorf(herald.ETOOLARGE, "the request names more than %d recipients, the limit of --max-request-recipients "+
			"(each user in each \"to\" counts, a broadcast counts one); split it into smaller requests", b.perRequest)
	}
	return nil
}

// publishBody decodes one publish or batch body. They are pooled (API.bodies): a decoder and its
// options are costly to set up, as much as the decoding of a small publish, and keep caches the
// next body uses.
type publishBody struct {
	dec    *jsontext.Decoder
	budget recipientBudget
	// opts are strictJSON with the "to" lists decoded through the budget.
	opts json.Options
}

// noBody is what a pooled decoder reads from: nothing, so that it does not keep a request's body.
var noBody = bytes.NewReader(nil)

// maxPooledBody is the largest body whose decoder is kept for the next: a decoder keeps a buffer as
// large as the largest value it read, which in a large body may be megabytes of data.
const maxPooledBody = 64 << 10

func (a *API) newPublishBody(r io.Reader) *publishBody {
	p, _ := a.bodies.Get().(*publishBody)
	if p == nil {
		p = &publishBody{dec: jsontext.NewDecoder(noBody)}
		p.opts = json.JoinOptions(strictJSON, json.WithUnmarshalers(json.UnmarshalFromFunc(p.decodeTo)))
	}
	p.dec.Reset(r, p.opts) // strictJSON, and the "to" lists through the budget: options of every value decoded
	p.budget = recipientBudget{perNotification: a.opts.MaxRecipients, perRequest: a.opts.MaxRequestRecipients}
	return p
}

// release returns p to the pool; after a body of more than maxPooledBody bytes (or of unknown
// size) with a new decoder.
func (a *API) release(p *publishBody, size int64) {
	if size < 0 || size > maxPooledBody {
		p.dec = jsontext.NewDecoder(noBody)
	} else {
		p.dec.Reset(noBody)
	}
	a.bodies.Put(p)
}

// decodeTo decodes a "to" list name by name, counting each against the budget before it is kept.
func (p *publishBody) decodeTo(dec *jsontext.Decoder, to *[]string) error {
	if dec.PeekKind() != '[' {
		return errors.ErrUnsupported // null, or the wrong kind: the default decoding says which
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	*to = []string{} // "to":[] is not "to":null
	for {
		switch dec.PeekKind() {
		case ']':
			_, err := dec.ReadToken()
			return err
		case 0: // an error, which the read returns
			_, err := dec.ReadToken()
			return err
		}
		if err := p.budget.add(1); err != nil {
			return err
		}
		if dec.PeekKind() == '"' {
			tok, err := dec.ReadToken()
			if err != nil {
				return err
			}
			*to = append(*to, tok.String())
			continue
		}
		var user string // not a string: the default decoding says so, naming the field
		if err := json.UnmarshalDecode(dec, &user); err != nil {
			return err
		}
		*to = append(*to, user)
	}
}

// start reads up to the first token of the body, which must be there.
func (p *publishBody) start() error {
	if p.dec.PeekKind() == 0 {
		if _, err := p.dec.ReadToken(); errors.Is(err, io.EOF) {
			return herald.Errorf(herald.EINVALID, "malformed JSON: empty body")
		} else if err != nil {
			return bodyError(err)
		}
	}
	return nil
}

// end checks that nothing but whitespace follows the body's value.
func (p *publishBody) end() error {
	if p.dec.PeekKind() == 0 {
		_, err := p.dec.ReadToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err := bodyError(err); herald.ErrorCode(err) == herald.ETOOLARGE {
			return err
		}
	}
	unread := p.dec.UnreadBuffer()
	at := p.dec.InputOffset() + int64(len(unread)-len(bytes.TrimLeft(unread, " \t\r\n")))
	return herald.Errorf(herald.EINVALID, "malformed JSON at byte %d: unexpected data after the top-level value", at)
}

// single decodes the body of one notification.
func (p *publishBody) single() (publishRequest, error) {
	var req publishRequest
	if err := p.start(); err != nil {
		return req, err
	}
	if err := json.UnmarshalDecode(p.dec, &req); err != nil {
		return req, bodyError(err)
	}
	return req, p.end()
}

// batch decodes the body of a batch, {"notifications": [...]}, handing each notification to each
// as soon as it is decoded; the first error ends the decoding. It refuses more than maxBatch
// notifications at the first one too many.
func (p *publishBody) batch(maxBatch int, each func(i int, req *publishRequest) error) error {
	if err := p.start(); err != nil {
		return err
	}
	if k := p.dec.PeekKind(); k != '{' && k != 'n' {
		return bodyError(&json.SemanticError{JSONKind: k, GoType: reflect.TypeFor[batchRequest]()})
	}
	tok, err := p.dec.ReadToken()
	if err != nil {
		return bodyError(err)
	}
	seen := false // "notifications" was given, and not as null
	for tok.Kind() == '{' {
		name, err := p.dec.ReadToken()
		if err != nil {
			return bodyError(err)
		}
		if name.Kind() == '}' {
			break
		}
		if name.String() != "notifications" {
			// As strictJSON has it: names match in their case only, and unknown ones are refused.
			return bodyError(&json.SemanticError{JSONPointer: jsontext.Pointer("").AppendToken(name.String()), Err: json.ErrUnknownName})
		}
		switch k := p.dec.PeekKind(); k {
		case 'n':
			if _, err := p.dec.ReadToken(); err != nil {
				return bodyError(err)
			}
			continue
		case '[':
		case 0:
			_, err := p.dec.ReadToken()
			return bodyError(err)
		default:
			return bodyError(&json.SemanticError{JSONPointer: "/notifications", JSONKind: k, GoType: reflect.TypeFor[[]publishRequest]()})
		}
		if _, err := p.dec.ReadToken(); err != nil {
			return bodyError(err)
		}
		seen = true
		for i := 0; ; i++ {
			switch p.dec.PeekKind() {
			case ']':
				if i == 0 {
					return herald.Errorf(herald.EINVALID, "\"notifications\" must not be empty")
				}
			case 0:
				_, err := p.dec.ReadToken()
				return bodyError(err)
			default:
				if i == maxBatch {
					return herald.Errorf(herald.ETOOLARGE, "a batch holds at most %d notifications (--max-batch)", maxBatch)
				}
				p.budget.inNotification = 0
				var req publishRequest
				if err := json.UnmarshalDecode(p.dec, &req); err != nil {
					// A decoding error names its field; a limit of one notification needs saying which.
					var he *herald.Error
					if errors.As(err, &he) && !p.budget.overRequest {
						return prefixed(fmt.Sprintf("notifications[%d]: ", i), he)
					}
					return bodyError(err)
				}
				if (req.Broadcast != nil && *req.Broadcast) || req.Topic != nil {
					if err := p.broadcast(); err != nil {
						return err
					}
				}
				if err := each(i, &req); err != nil {
					return err
				}
				continue
			}
			break
		}
		if _, err := p.dec.ReadToken(); err != nil { // ]
			return bodyError(err)
		}
	}
	if !seen {
		return herald.Errorf(herald.EINVALID, "\"notifications\" is required")
	}
	return p.end()
}

// broadcast counts a broadcast or topic notification as one recipient of the request: its
// recipients are known only at its commit.
func (p *publishBody) broadcast() error {
	p.budget.inNotification = 0 // a broadcast names no user
	return p.budget.add(1)
}

// bodyError describes an error of decoding a publish body: a limit of its own, the body's size,
// a failed read, or the JSON at fault.
func bodyError(err error) error {
	var he *herald.Error
	var tooLarge *http.MaxBytesError
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &tooLarge):
		return herald.Errorf(herald.ETOOLARGE, "the body is larger than %d bytes", tooLarge.Limit)
	case errors.As(err, &syntax), errors.As(err, &semantic), errors.Is(err, io.ErrUnexpectedEOF):
		return herald.Errorf(herald.EINVALID, "malformed JSON%s", jsonProblem(err))
	}
	return herald.Errorf(herald.EINVALID, "could not read the body")
}
