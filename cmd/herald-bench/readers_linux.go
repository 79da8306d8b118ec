package main

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A worker reads its streams from one epoll loop per core rather than a goroutine each: the
// generator shares the machine with the servers it measures, and every microsecond it spends per
// event is one the servers do not get (a goroutine per stream cost about 6.5 µs per event, two
// reads and a park each). The loops are level-triggered and read each ready socket once per
// wait, so a stream is never starved by a busy one.
type readLoop struct {
	epfd    int
	streams []*benchStream
}

func (w *worker) startReading(streams []*benchStream) error {
	n := max(1, runtime.GOMAXPROCS(0))
	loops := make([]*readLoop, 0, n)
	for range n {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			for _, l := range loops {
				unix.Close(l.epfd)
			}
			return err
		}
		loops = append(loops, &readLoop{epfd: epfd})
	}
	var firstErr error
	for i, s := range streams {
		// The socket is taken from the runtime: a duplicate is kept, the original closed, so
		// that Go's own poller is not woken for it as well.
		fd, err := takeFD(s.conn)
		if err == nil {
			s.fd = fd
			if len(s.pre) > 0 && !w.received(s, s.pre) {
				err = errors.New("malformed response body")
			}
			s.pre = nil
		}
		l := loops[i%n]
		s.epfd = l.epfd
		if err == nil {
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(len(l.streams))}
			err = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
		}
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			w.end(s)
			continue
		}
		l.streams = append(l.streams, s)
	}
	for _, l := range loops {
		w.readers.Add(1)
		go w.runLoop(l)
	}
	return firstErr
}

func takeFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, derr := -1, error(nil)
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	c.Close() // the duplicate keeps the socket open, non-blocking as it was
	return fd, nil
}

func (w *worker) runLoop(l *readLoop) {
	defer w.readers.Done()
	defer unix.Close(l.epfd)
	buf := make([]byte, 64<<10)
	evs := make([]unix.EpollEvent, 512)
	for !w.stopping.Load() {
		n, err := unix.EpollWait(l.epfd, evs, 200)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range evs[:n] {
			w.readOnce(l, l.streams[ev.Fd], buf)
		}
	}
}

// readOnce reads what s's socket holds, once.
func (w *worker) readOnce(l *readLoop, s *benchStream, buf []byte) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.fd < 0 || s.paused {
		return
	}
	m, err := unix.Read(s.fd, buf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if m > 0 && w.received(s, buf[:m]) {
		return
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
	w.end(s)
}

// stall stops reading the stalling streams: they leave their read loops, and what the server
// sends them stays in the sockets' buffers, then in the server.
func (w *worker) stall() int {
	n := 0
	for _, s := range w.streams {
		if !s.stalling {
			continue
		}
		s.rmu.Lock()
		if s.fd >= 0 && !s.paused {
			s.paused = true
			unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
			n++
		}
		s.rmu.Unlock()
	}
	return n
}

// drain reads what a stalled stream's socket holds, until the server's end of the stream or
// wait, then closes it. It reports whether the server had ended the stream.
func (w *worker) drain(s *benchStream, wait time.Duration) (cut bool) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.fd < 0 {
		return false
	}
	defer func() {
		unix.Close(s.fd)
		s.fd = -1
	}()
	deadline := time.Now().Add(wait)
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(s.fd, buf)
		switch {
		case n > 0:
			if !w.received(s, buf[:n]) {
				return false
			}
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			fds := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && err != unix.EINTR {
				return false
			}
		case err == nil: // n == 0: the server closed the stream
			return true
		default: // reset by the server
			return true
		}
	}
}

// end closes a stream the server ended (or that failed).
func (w *worker) end(s *benchStream) {
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	w.closed.Add(1)
}

func (w *worker) stopReading() {
	w.stopping.Store(true)
	w.readers.Wait()
	for _, s := range w.streams {
		if s.fd >= 0 {
			unix.Close(s.fd)
			s.fd = -1
		}
	}
}
