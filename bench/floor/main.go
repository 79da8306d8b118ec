// Command floor is the least an SSE server can do per event, as a yardstick for the load
// generator: each stream is a hijacked connection kept only as its file descriptor, with no
// goroutine, no buffer, no heartbeat and no storage, and a publish writes the encoded frame to
// every recipient in one loop of write(2) calls (a stream whose socket is full misses it). What
// herald-bench measures against it is the cost of the writes themselves and of the generator
// reading them: no real server can go below it on the same machine. It speaks the subset of
// Herald's API the generator uses. Linux only.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

type server struct {
	peers   []string // -peers: other floor servers a publish is forwarded to, as a bus would
	mu      sync.Mutex
	streams map[string][]int // user → fds
	all     []int
	conns   []net.Conn // kept so the runtime does not close the fds
	ids     atomic.Int64
	dropped atomic.Int64
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address")
	peers := flag.String("peers", "", "comma-separated base URLs of other floor servers to forward publishes to (the cluster reference)")
	flag.Parse()
	s := &server{streams: map[string][]int{}}
	if *peers != "" {
		s.peers = strings.Split(*peers, ",")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stream", s.stream)
	mux.HandleFunc("POST /v1/notifications", s.publish)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	log.Printf("floor SSE server on http://%s", *addr)
	log.Fatal(http.ListenAndServe(*addr, mux))
}

func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fd := -1
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			raw.Control(func(f uintptr) { fd = int(f) })
		}
	}
	if fd < 0 {
		conn.Close()
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n: floor stream\n\n")); err != nil {
		conn.Close()
		return
	}
	// Clients never leave during a run; a closed stream's fd is simply written to in vain.
	s.mu.Lock()
	s.streams[user] = append(s.streams[user], fd)
	s.all = append(s.all, fd)
	s.conns = append(s.conns, conn)
	s.mu.Unlock()
}

type publishRequest struct {
	To        []string        `json:"to"`
	Broadcast bool            `json:"broadcast"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
}

func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	var p publishRequest
	if err == nil {
		err = json.Unmarshal(raw, &p)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.Header.Get("X-Floor-Forwarded") == "" {
		// Forwarded before the local writes, as a node publishes on the bus before it fans out.
		for _, peer := range s.peers {
			go func() {
				req, _ := http.NewRequest(http.MethodPost, peer+"/v1/notifications", bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Floor-Forwarded", "1")
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				} else {
					log.Printf("forward to %s: %v", peer, err)
				}
			}()
		}
	}
	id := s.ids.Add(1)
	frame := []byte("id: " + strconv.FormatInt(id, 10) + "\nevent: " + p.Type + "\ndata: " +
		`{"id":"` + strconv.FormatInt(id, 10) + `","type":"` + p.Type + `","data":` + string(p.Data) + "}\n\n")
	write := func(fd int) {
		// A raw system call, as Herald's parked writers make: the socket is non-blocking.
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)))
		if e != 0 || int(n) < len(frame) {
			s.dropped.Add(1)
		}
	}
	s.mu.Lock()
	if p.Broadcast {
		for _, fd := range s.all {
			write(fd)
		}
	} else {
		for _, u := range p.To {
			for _, fd := range s.streams[u] {
				write(fd)
			}
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"id":"%d","dropped":%d}`+"\n", id, s.dropped.Load())
}
