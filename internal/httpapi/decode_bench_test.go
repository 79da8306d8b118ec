package httpapi

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkPublishDecode measures what a publish request costs before it reaches the store:
// decoding the body and validating each notification in it.
func BenchmarkPublishDecode(b *testing.B) {
	a := New(Options{NoPark: true})
	item := func(i int) string {
		return fmt.Sprintf(`{"to":["user-%d"],"type":"comment.created","key":"k-%d",`+
			`"data":{"post":"p-1842","by":"Bob","text":"Nice work on the release notes!","n":%d}}`, i, i, i)
	}
	single := []byte(item(1))
	items := make([]string, 1000)
	for i := range items {
		items[i] = item(i)
	}
	batch := []byte(`{"notifications":[` + strings.Join(items, ",") + `]}`)

	b.Run("single", func(b *testing.B) {
		b.SetBytes(int64(len(single)))
		b.ReportAllocs()
		for b.Loop() {
			p := a.newPublishBody(bytes.NewReader(single))
			req, err := p.single()
			a.release(p, int64(len(single)))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := a.draft(&req, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("batch1000", func(b *testing.B) {
		b.SetBytes(int64(len(batch)))
		b.ReportAllocs()
		for b.Loop() {
			p := a.newPublishBody(bytes.NewReader(batch))
			err := p.batch(a.opts.MaxBatch, func(_ int, req *publishRequest) error {
				_, err := a.draft(req, "")
				return err
			})
			a.release(p, int64(len(batch)))
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
