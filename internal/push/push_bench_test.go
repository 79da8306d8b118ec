package push_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald"
	"github.com/heraldhq/herald/internal/push"
	"github.com/heraldhq/herald/internal/push/pushtest"
	"github.com/heraldhq/herald/internal/store/sqlite"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOutbox measures the sender: pushes claimed from a SQLite outbox, read back with
// their notification, checked (presence, state), encrypted (RFC 8291: an ECDH key pair, HKDF,
// AES-GCM over a padded 4 KB record), signed (a VAPID JWT, ES256) and posted to the loopback push
// service over keep-alive HTTP, then removed from the outbox. An op is one push. The service
// only counts (no decryption), so the figure is Herald's cost; it shares the machine's cores.
func BenchmarkOutbox(b *testing.B) {
	for _, workers := range []int{4, 16, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "h.db"), sqlite.Options{Sync: sqlite.SyncNormal})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			keys, _ := push.GenerateKeys()
			svc := pushtest.New(b, keys.Public)
			svc.CountOnly = true
			const users = 100
			for u := range users {
				sub := svc.Subscribe()
				if _, err := store.AddPushSubscription(b.Context(), herald.PushSubscription{User: fmt.Sprint("u", u),
					Endpoint: sub.Endpoint, P256DH: sub.P256DH, Auth: sub.Auth}, 0); err != nil {
					b.Fatal(err)
				}
			}
			content := &herald.Content{Title: "Bob commented on your post", Body: "Looks good to me, ship it", URL: "https://app.example/posts/42", Group: "post-42"}
			for i := 0; i < b.N; i += 1000 {
				var drafts []herald.Draft
				for j := i; j < min(b.N, i+1000); j++ {
					drafts = append(drafts, herald.Draft{To: []string{fmt.Sprint("u", j%users)}, Type: "comment", Content: content, Data: json.RawMessage(`{}`)})
				}
				if _, err := store.Append(b.Context(), "p", drafts); err != nil {
					b.Fatal(err)
				}
			}
			s, err := push.New(push.Options{Store: store, Keys: keys, Subject: "mailto:ops@example.com", Workers: workers,
				Client: push.NewClient(workers), Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			sent := 0
			for sent < b.N {
				n, err := s.Round(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					b.Fatalf("outbox empty after %d of %d", sent, b.N)
				}
				sent += n
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pushes/s")
			// CPU per push tells more than the rate on a shared machine: the process's user and
			// system time (the push service's share of it is its reading of the requests).
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/push")
		})
	}
}
