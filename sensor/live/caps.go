package live

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DropCapabilities drops every capability of the process but keep (unix.CAP_*
// numbers), on all its threads, once src is open: an open AF_PACKET socket, ring buffer or map
// is used through its file descriptor, which needs none. Only clsact
// attachment keeps CAP_NET_ADMIN, to remove its filters at Close (TCX links
// detach when their descriptor closes). It also sets no_new_privs, so no
// program the process runs gets capabilities back.
//
// It needs a binary built without cgo (the runtime then changes every
// thread); with cgo it changes nothing and returns ErrDropUnsupported.
func DropCapabilities(src Source, keep ...uintptr) error {
	if e, ok := src.(*EBPF); ok && e.attach == "clsact" {
		keep = append(keep, unix.CAP_NET_ADMIN)
	}
	return dropCaps(keep)
}

// ErrDropUnsupported means the process cannot drop its capabilities on
// every thread: the binary was built with cgo. Build with CGO_ENABLED=0.
var ErrDropUnsupported = errors.New("dropping capabilities is not possible in a binary built with cgo (build with CGO_ENABLED=0)")

func dropCaps(keep []uintptr) error {
	kept := func(c uintptr) bool {
		for _, k := range keep {
			if k == c {
				return true
			}
		}
		return false
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
		if e == syscall.ENOTSUP {
			return ErrDropUnsupported
		}
		return fmt.Errorf("dropping capabilities: no_new_privs: %w", e)
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); e != 0 && e != unix.EINVAL {
		return fmt.Errorf("dropping capabilities: ambient set: %w", e)
	}
	for c := uintptr(0); c <= unix.CAP_LAST_CAP; c++ {
		if kept(c) {
			continue
		}
		// EINVAL: a capability this kernel does not know; EPERM: no
		// CAP_SETPCAP, so the bounding set stays (the sets below still go).
		if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, c, 0); e != 0 && e != unix.EINVAL && e != unix.EPERM {
			return fmt.Errorf("dropping capabilities: bounding set: %w", e)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for _, c := range keep {
		data[c/32].Effective |= 1 << (c % 32)
		data[c/32].Permitted |= 1 << (c % 32)
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		if e == syscall.ENOTSUP {
			return fmt.Errorf("dropping capabilities: not possible in a binary built with cgo (build with CGO_ENABLED=0): %w", e)
		}
		return fmt.Errorf("dropping capabilities: %w", e)
	}
	return nil
}
