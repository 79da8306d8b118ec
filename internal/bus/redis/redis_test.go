package redis

import (
	"bufio"
	"context"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/heraldhq/herald/internal/bus/bustest"
	"github.com/heraldhq/herald/internal/testenv"
)

func open(t *testing.T, url, channel string) *Bus {
	t.Helper()
	b, err := Open(context.Background(), url, Options{Channel: channel})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// killClients cuts the connections of the buses on channel, and only theirs (other tests share
// the server): each bus names its connections after its channel.
func killClients(t *testing.T, url, channel string) {
	o, _ := goredis.ParseURL(url)
	admin := goredis.NewClient(o)
	defer admin.Close()
	list, err := admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Errorf("CLIENT LIST: %v", err)
		return
	}
	sc := bufio.NewScanner(strings.NewReader(list))
	killed := 0
	for sc.Scan() {
		fields := map[string]string{}
		for _, kv := range strings.Fields(sc.Text()) {
			k, v, _ := strings.Cut(kv, "=")
			fields[k] = v
		}
		if fields["name"] == "herald:"+channel {
			if err := admin.Do(context.Background(), "CLIENT", "KILL", "ID", fields["id"]).Err(); err == nil {
				killed++
			}
		}
	}
	if killed == 0 {
		t.Error("no connection to kill")
	}
}

func TestConformance(t *testing.T) {
	url := testenv.Redis(t)
	bustest.Run(t, func(t *testing.T) bustest.Cluster {
		channel := testenv.Name("herald")
		return bustest.Cluster{
			A: open(t, url, channel), B: open(t, url, channel), Other: open(t, url, testenv.Name("herald")),
			Cut: func() { killClients(t, url, channel) },
		}
	})
}

func TestOpenRefusesBadURL(t *testing.T) {
	if _, err := Open(context.Background(), "redis://:s3cret@host:notaport", Options{}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open: %v", err)
	}
}
