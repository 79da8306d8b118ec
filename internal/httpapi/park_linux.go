package httpapi

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const parkSupported = true

// poller is an epoll instance over a shard's connections, and an eventfd to wake its wait.
// Connections are registered edge-triggered, as Go's own netpoller does, so a hang-up or room to
// write is reported once, not for as long as it lasts.
type poller struct {
	epfd, efd int
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	return &poller{epfd: epfd, efd: efd}, nil
}

// add watches a connection. Control keeps its fd open meanwhile.
func (p *poller) add(raw syscall.RawConn) error {
	var err error
	cerr := raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// remove stops watching a connection before it is closed.
func (p *poller) remove(raw syscall.RawConn) {
	_ = raw.Control(func(fd uintptr) {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// run reports events until done is closed (and wake called).
func (p *poller) run(done <-chan struct{}, report func(fd int, input, output bool)) {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		select {
		case <-done:
			return
		default:
		}
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == p.efd {
				var b [8]byte
				_, _ = unix.Read(p.efd, b[:])
				continue
			}
			input := ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
			report(fd, input, ev.Events&unix.EPOLLOUT != 0)
		}
	}
}

func (p *poller) wake() {
	_, _ = unix.Write(p.efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

func (p *poller) close() {
	unix.Close(p.epfd)
	unix.Close(p.efd)
}

// rawWriter writes to sockets without waiting, for one goroutine (a shard's writer). It is a
// value rather than a closure per write, as RawConn.Write takes: a closure capturing the write's
// buffer and results escapes, three allocations for each of a broadcast's thousands of writes.
type rawWriter struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // w.write, bound once
}

func newRawWriter() *rawWriter {
	w := &rawWriter{}
	w.fn = w.write
	return w
}

// rawWrite writes as much of b as the socket takes now, without waiting.
func (w *rawWriter) rawWrite(raw syscall.RawConn, b []byte) (n int, err error) {
	w.b, w.n, w.err = b, 0, nil
	err = raw.Write(w.fn)
	if err == nil {
		err = w.err
	}
	n = w.n
	w.b, w.err = nil, nil // the buffer is the caller's again
	return n, err
}

func (w *rawWriter) write(fd uintptr) bool {
	for w.n < len(w.b) {
		m, e := writeNonblocking(int(fd), w.b[w.n:])
		if e == unix.EINTR {
			continue
		}
		if e == unix.EAGAIN {
			break
		}
		if e != nil {
			w.err = e
			break
		}
		w.n += m
	}
	return true // never wait: the poller reports room
}

// writeNonblocking is write(2) as a raw system call, without telling the scheduler: the socket
// is non-blocking, so the call never waits, and a writer that enters and leaves the scheduler's
// syscall state for every one of thousands of writes keeps the runtime's monitor thread waking
// every 20 µs to look for a blocked P (6-8 % of a broadcast's CPU in profiles).
func writeNonblocking(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawRead reads what is there without waiting: 0 at the end of input, -1 when nothing is.
func rawRead(raw syscall.RawConn, b []byte) (n int, err error) {
	var rerr error
	err = raw.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), b)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			n, rerr = -1, nil
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, err
}
