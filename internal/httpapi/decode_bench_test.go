package httpapi

import (
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
			var req publishRequest
			if err := decodeStrict(single, &req); err != nil {
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
			var req batchRequest
			if err := decodeStrict(batch, &req); err != nil {
				b.Fatal(err)
			}
			for i := range req.Notifications {
				if _, err := a.draft(&req.Notifications[i], ""); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
