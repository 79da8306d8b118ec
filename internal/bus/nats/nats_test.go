package nats

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/bus/bustest"
	"github.com/heraldhq/herald/internal/testenv"
)

func open(t *testing.T, url, subject string) *Bus {
	t.Helper()
	b, err := Open(context.Background(), url, Options{Subject: subject})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	url := testenv.NATS(t)
	bustest.Run(t, func(t *testing.T) bustest.Cluster {
		subject := testenv.Name("herald")
		a, b := open(t, url, subject), open(t, url, subject)
		return bustest.Cluster{
			A: a, B: b, Other: open(t, url, testenv.Name("herald")),
			// The connections drop and the clients reconnect, as after a network outage.
			Cut: func() {
				a.nc.ForceReconnect()
				b.nc.ForceReconnect()
			},
		}
	})
}

func TestRedact(t *testing.T) {
	msg := redact("dial nats://user:s3cret@host:4222 failed; token t0ken", "nats://user:s3cret@host:4222,nats://t0ken@other:4222")
	if strings.Contains(msg, "s3cret") || strings.Contains(msg, "t0ken") {
		t.Fatalf("redact: %q", msg)
	}
}

// TestPendingBound: the bound on messages waiting for delivery is the configured one, in
// messages and in bytes: with Listen's delivery held up, what is beyond it is dropped and the
// loss reported. (The bus used to subscribe with a channel, whose SetPendingLimits fails: its
// channel of 1,024 was the only bound.)
func TestPendingBound(t *testing.T) {
	url := testenv.NATS(t)
	tests := []struct {
		name                string
		msgs, bytes         int
		size, publish, want int // want: at most this many delivered
	}{
		{"messages", 8, 1 << 20, 16, 40, 1 + 8},
		{"bytes", 1000, 4 << 10, 1 << 10, 40, 1 + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := testenv.Name("herald")
			b, err := Open(context.Background(), url, Options{Subject: subject, PendingMsgs: tt.msgs, PendingBytes: tt.bytes})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			pub := open(t, url, subject)
			defer pub.Close()

			ctx, cancel := context.WithCancel(context.Background())
			hold := make(chan struct{})
			lost := make(chan struct{}, 100)
			var delivered atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				b.Listen(ctx, func([]byte) { <-hold; delivered.Add(1) }, func() { lost <- struct{}{} })
			}()
			defer func() { cancel(); <-done }()
			select {
			case <-lost: // subscribed
			case <-time.After(10 * time.Second):
				t.Fatal("Listen did not subscribe")
			}
			for range tt.publish {
				if err := pub.Publish(ctx, make([]byte, tt.size)); err != nil {
					t.Fatal(err)
				}
			}
			// Every message has reached the listening client (a round trip on its connection
			// after the publisher's flush): those beyond the bound were dropped.
			fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
			defer fcancel()
			if err := b.nc.FlushWithContext(fctx); err != nil {
				t.Fatal(err)
			}
			close(hold)
			select {
			case <-lost:
			case <-time.After(10 * time.Second):
				t.Fatalf("%d messages held beyond a bound of %d messages, %d bytes: no loss reported", tt.publish, tt.msgs, tt.bytes)
			}
			if n := delivered.Load(); n > int64(tt.want) {
				t.Fatalf("%d messages delivered, want at most %d", n, tt.want)
			}
		})
	}
}
