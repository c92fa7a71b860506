package live

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Attaching with clsact, on kernels without TCX (before 6.6).
//
// A clsact hook's filters are shared by every program on the host, and
// unlike a TCX link nothing removes a filter when the process that added
// it dies. So a capture adds each filter at a priority no other filter
// uses, with a create-exclusive request (never a replace), and deletes only
// filters that still run its own program: another capture on the
// interface (`edgeward flows --mode ebpf` next to the sensor) or another
// tool keeps its filters.
//
// A capture also marks its filters as alive while its process lives: for
// each program it binds an abstract unix socket named after the program's
// id (ownerName). The kernel releases the name when the process exits,
// however it exits (SIGKILL too), and abstract names belong to a network
// namespace, as the interface and its filters do. A filter named
// edgeward-ingress or edgeward-egress whose name can be bound is a dead
// capture's: the next capture on the interface removes it. Looking for the
// program among the open descriptors in /proc instead would not see an
// edgeward in another PID namespace (a container sharing the host's
// network) or of another user (the systemd unit runs the sensor as a
// DynamicUser with ProtectProc=invisible); a state file would need a
// directory every edgeward shares and could outlive its process.

// clsactPrefix starts the name of every filter edgeward adds.
const clsactPrefix = "edgeward-"

// ownerName is the abstract socket name that a live capture holds for the
// program with the given id.
func ownerName(prog uint32) string { return fmt.Sprintf("@edgeward-clsact-prog-%d", prog) }

// bindOwner binds the socket named for prog: it succeeds when no live
// process holds the name.
func bindOwner(prog uint32) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: ownerName(prog)}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// ownerGone says whether the process that attached prog has exited. When
// it cannot tell, it says no: a live capture's filter must not go.
func ownerGone(prog uint32) bool {
	fd, err := bindOwner(prog)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

func progID(p *ebpf.Program) (uint32, error) {
	info, err := p.Info()
	if err != nil {
		return 0, err
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("the kernel does not say the program's id")
	}
	return uint32(id), nil
}

// attachClsact adds the clsact qdisc unless the interface has one, removes
// the filters of captures whose process is gone, and adds a filter for
// each program.
func (e *EBPF) attachClsact(ifindex int) error {
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscAdd(qdisc); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding clsact qdisc: %w", err)
	}
	link := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: ifindex}}
	for _, h := range []struct {
		parent uint32
		prog   *ebpf.Program
		name   string
	}{{netlink.HANDLE_MIN_INGRESS, e.objs.Ingress, clsactPrefix + "ingress"}, {netlink.HANDLE_MIN_EGRESS, e.objs.Egress, clsactPrefix + "egress"}} {
		id, err := progID(h.prog)
		if err != nil {
			return fmt.Errorf("%s: %w", h.name, err)
		}
		// Held before the filter exists, so no other capture ever sees
		// the filter without its owner.
		fd, err := bindOwner(id)
		if err != nil {
			return fmt.Errorf("%s: binding the abstract socket %s that marks the filter as alive: %w", h.name, ownerName(id), err)
		}
		e.owners = append(e.owners, fd)
		e.removeStale(link, h.parent)
		f := &netlink.BpfFilter{
			FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: h.parent, Handle: 1, Protocol: unix.ETH_P_ALL},
			Fd:          h.prog.FD(), Name: h.name, DirectAction: true, Id: int(id),
		}
		if err := addAtFreePref(link, f); err != nil {
			return fmt.Errorf("adding %s filter: %w", h.name, err)
		}
		e.filters = append(e.filters, f)
	}
	e.attach = "clsact"
	return nil
}

// removeStale deletes the filters on parent that dead captures left.
func (e *EBPF) removeStale(link netlink.Link, parent uint32) {
	fs, err := netlink.FilterList(link, parent)
	if err != nil {
		e.log.Warn("listing filters to remove those of edgeward processes that are gone", "error", err)
		return
	}
	for _, f := range fs {
		b, ok := f.(*netlink.BpfFilter)
		if !ok || b.Handle == 0 || !strings.HasPrefix(b.Name, clsactPrefix) || !ownerGone(uint32(b.Id)) {
			continue
		}
		b.Fd = -1
		if err := netlink.FilterDel(b); err != nil {
			e.log.Warn("removing the filter of an edgeward process that is gone", "filter", b.Name, "pref", b.Priority, "handle", b.Handle, "prog_id", b.Id, "error", err)
			continue
		}
		e.log.Info("removed the filter of an edgeward process that is gone", "filter", b.Name, "pref", b.Priority, "handle", b.Handle, "prog_id", b.Id)
	}
}

// addAtFreePref adds f at the lowest priority no filter on its parent
// uses, so no other filter is replaced or joined. When another program
// takes that priority between the listing and the request, it tries the
// next.
func addAtFreePref(link netlink.Link, f *netlink.BpfFilter) error {
	for attempt := 0; ; attempt++ {
		used, err := prefsInUse(link, f.Parent)
		if err != nil {
			return err
		}
		pref := uint16(1)
		for used[pref] {
			if pref++; pref == 0 {
				return errors.New("every priority is in use")
			}
		}
		f.Priority = pref
		err = netlink.FilterAdd(f)
		if err == nil {
			return nil
		}
		if now, lerr := prefsInUse(link, f.Parent); lerr != nil || !now[pref] || attempt == 3 {
			return fmt.Errorf("pref %d: %w", pref, err)
		}
	}
}

func prefsInUse(link netlink.Link, parent uint32) (map[uint16]bool, error) {
	fs, err := netlink.FilterList(link, parent)
	if err != nil {
		return nil, fmt.Errorf("listing filters: %w", err)
	}
	used := make(map[uint16]bool, len(fs))
	for _, f := range fs {
		used[f.Attrs().Priority] = true
	}
	return used, nil
}

// present says whether f is still on its parent and still runs the
// program this capture added it with.
func present(f *netlink.BpfFilter) (bool, error) {
	fs, err := netlink.FilterList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: f.LinkIndex}}, f.Parent)
	if err != nil {
		return false, err
	}
	for _, g := range fs {
		if b, ok := g.(*netlink.BpfFilter); ok && b.Priority == f.Priority && b.Handle == f.Handle && b.Id == f.Id {
			return true, nil
		}
	}
	return false, nil
}

// checkFilters fails when another program removed or replaced one of the
// capture's filters: nothing would be counted there again.
func (e *EBPF) checkFilters() error {
	for _, f := range e.filters {
		if ok, err := present(f); err == nil && !ok {
			return fmt.Errorf("ebpf %s: the %s filter (pref %d, handle %d) was removed or replaced by another program (tc?), so nothing is counted there",
				e.cfg.Interface, f.Name, f.Priority, f.Handle)
		}
	}
	return nil
}

// detachClsact deletes the capture's filters, leaving a filter that is no
// longer its own, then releases the names that mark them as alive.
func (e *EBPF) detachClsact() {
	for _, f := range e.filters {
		ok, err := present(f)
		if err != nil {
			e.log.Warn("listing filters to remove this capture's (the next capture on the interface removes them)", "filter", f.Name, "pref", f.Priority, "error", err)
			continue
		}
		if !ok {
			continue // removed or replaced by another program
		}
		if err := netlink.FilterDel(f); err != nil {
			e.log.Warn("removing filter (the next capture on the interface removes it)", "filter", f.Name, "pref", f.Priority, "error", err)
		}
	}
	for _, fd := range e.owners {
		unix.Close(fd)
	}
	e.owners = nil
}
