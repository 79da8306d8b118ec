// Command naive is the reference the load generator measures Herald against: the SSE server most
// people would write first with net/http. Each stream is a handler goroutine with a buffered
// channel and a heartbeat ticker; a publish encodes the event and sends it on every recipient's
// channel, dropping it for a stream whose channel is full. Nothing is stored, so it does no
// replay and no durable acknowledgement: it is a floor for the cost of holding and writing to
// streams, not a competitor. It speaks the subset of Herald's API the generator uses.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type server struct {
	mu      sync.RWMutex
	streams map[string]map[chan []byte]struct{}
	all     map[chan []byte]struct{}
	ids     atomic.Int64
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	s := &server{streams: map[string]map[chan []byte]struct{}{}, all: map[chan []byte]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", s.stream)
	mux.HandleFunc("POST /v1/notifications", s.publish)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	log.Printf("naive SSE server on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}

func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	ch := make(chan []byte, 64)
	s.mu.Lock()
	if s.streams[user] == nil {
		s.streams[user] = map[chan []byte]struct{}{}
	}
	s.streams[user][ch] = struct{}{}
	s.all[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams[user], ch)
		if len(s.streams[user]) == 0 {
			delete(s.streams, user)
		}
		delete(s.all, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": naive stream\n\n")
	w.(http.Flusher).Flush()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			fmt.Fprint(w, ":\n\n")
		case b := <-ch:
			w.Write(b)
		}
		w.(http.Flusher).Flush()
	}
}

type publishRequest struct {
	To        []string        `json:"to"`
	Broadcast bool            `json:"broadcast"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
}

func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	var p publishRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := s.ids.Add(1)
	frame := []byte("id: " + strconv.FormatInt(id, 10) + "\nevent: " + p.Type + "\ndata: " +
		`{"id":"` + strconv.FormatInt(id, 10) + `","type":"` + p.Type + `","data":` + string(p.Data) + "}\n\n")
	send := func(ch chan []byte) {
		select {
		case ch <- frame:
		default: // full: this stream misses it
		}
	}
	s.mu.RLock()
	if p.Broadcast {
		for ch := range s.all {
			send(ch)
		}
	} else {
		for _, u := range p.To {
			for ch := range s.streams[u] {
				send(ch)
			}
		}
	}
	s.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"%d"}`+"\n", id)
}
