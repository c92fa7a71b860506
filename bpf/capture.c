//go:build ignore

// SPDX-License-Identifier: MIT OR GPL-2.0
/* TC ingress and egress programs that count bidirectional flows at the
 * gateway and pass the first payload packets of each flow to user space.
 *
 * The parsing mirrors sensor/decode (Ethernet, up to two VLAN tags, PPPoE,
 * IPv4, IPv6 with extension headers, TCP, UDP, ICMP) so that the kernel's
 * counters equal the ones the pcap and AF_PACKET paths compute; the
 * accounting mirrors sensor/flowtable (per-direction counters, OR-ed TCP
 * flags, Zeek history letters, FIN/RST close, idle and active restarts).
 * docs/deploy.md lists where the two differ (tunnels, fragments, MPLS). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "edgeward.h"

char __license[] SEC("license") = "Dual MIT/GPL";

/* Knobs, set from Go before loading (ebpf.CollectionSpec.Variables). */
volatile const __u64 idle_ns = 60000000000ULL;    /* flowtable.Config.IdleTimeout */
volatile const __u64 active_ns = 300000000000ULL; /* flowtable.Config.ActiveTimeout */
volatile const __u64 linger_ns = 5000000000ULL;   /* flowtable.Config.CloseLinger */
volatile const __u32 sample_packets = 16; /* payload packets per direction sent to user space */
volatile const __u32 sample_bytes = 16384; /* payload bytes per sample (at most EW_SNAP_MAX with headers) */
volatile const __u8 raw_ip = 0;           /* the device has no link layer (WireGuard, tun) */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, struct ew_key);
	__type(value, struct ew_flow);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Where a sample is put together before it is copied to the ring buffer
 * at its actual size. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ew_sample);
} scratch SEC(".maps");

struct ew_stats {
	__u64 n[EW_C_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ew_stats);
} counters SEC(".maps");

/* Force bpf2go to emit the event types (they appear in no map). */
const struct ew_event *unused_event __attribute__((unused));
const struct ew_sample *unused_sample __attribute__((unused));
const enum ew_event_kind *unused_kind __attribute__((unused));
const enum ew_counter *unused_counter __attribute__((unused));

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

enum { PARSE_OK, PARSE_NOT_IP, PARSE_BAD };

/* How much of a paged skb to make linear when its headers are not. */
#define PULL_LEN 512

/* What parse learned about one packet. key is directional here: a sent it. */
struct pkt {
	struct ew_key key;
	__u8 smac[6];
	__u8 dmac[6];
	__u32 ip_bytes;
	__u32 payload_len; /* from the headers */
	__u32 payload_off; /* where the transport payload starts in the frame */
	__u32 payload_cap; /* payload bytes present in the frame */
	__u32 seq;
	__u8 flags;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 sample; /* TCP or UDP: user space inspects its payload */
};

static __always_inline void addr4(__u8 *dst, __be32 a)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &a, 4);
}

/* icmp_ports sets the Community ID port equivalents, as flow.ICMPPorts. */
static __always_inline void icmp_ports(struct pkt *p, __u8 proto, __u8 t, __u8 c)
{
	int other = -1;
	if (proto == IPPROTO_ICMP) {
		switch (t) {
		case 0: other = 8; break;
		case 8: other = 0; break;
		case 13: other = 14; break;
		case 14: other = 13; break;
		case 15: other = 16; break;
		case 16: other = 15; break;
		case 10: other = 9; break;
		case 9: other = 10; break;
		case 17: other = 18; break;
		case 18: other = 17; break;
		}
	} else {
		switch (t) {
		case 128: other = 129; break;
		case 129: other = 128; break;
		case 130: other = 131; break;
		case 131: other = 130; break;
		case 133: other = 134; break;
		case 134: other = 133; break;
		case 135: other = 136; break;
		case 136: other = 135; break;
		case 139: other = 140; break;
		case 140: other = 139; break;
		case 144: other = 145; break;
		case 145: other = 144; break;
		}
	}
	p->key.port_a = t;
	p->key.port_b = other >= 0 ? (__u16)other : c;
}

/* The parser reads headers in place (direct packet access). A header that
 * lies in the frame but past the skb's linear part makes it return
 * PARSE_SHORT; the caller pulls the headers in and parses again. */
enum { PARSE_SHORT = PARSE_BAD + 1 };

/* at returns the frame's bytes [off, off+n) or NULL when they are not in
 * the linear part. */
#define AT(skb, off, n)                                              \
	({                                                           \
		__u8 *_d = (__u8 *)data + ((off) & 0x7fff);          \
		(void *)(_d + (n)) > data_end ? (__u8 *)0 : _d;      \
	})

/* transport reads the transport header at off. l4len is the length the IP
 * header claims, avail what the frame holds from off on (decode.transport). */
static __always_inline int transport(struct __sk_buff *skb, void *data, void *data_end, struct pkt *p, __u8 proto, __u32 off, int l4len, int avail)
{
	int cap = avail < l4len ? avail : l4len; /* without Ethernet padding */
	if (cap < 0)
		cap = 0;
	p->key.proto = proto;
	p->payload_len = l4len > 0 ? l4len : 0;
	__u8 *h;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) {
		/* The ports open the three headers; they are kept from a
		 * header cut short after them. */
		if (cap < 4)
			return PARSE_BAD;
		if (!(h = AT(skb, off, 4)))
			return PARSE_SHORT;
		p->key.port_a = (__u16)h[0] << 8 | h[1];
		p->key.port_b = (__u16)h[2] << 8 | h[3];
	}
	switch (proto) {
	case IPPROTO_TCP:
		if (cap < 20) { /* the ports (above) from a header cut short */
			if (cap >= 14) {
				if (!(h = AT(skb, off, 14)))
					return PARSE_SHORT;
				p->flags = h[13];
			}
			p->payload_len = 0;
			return PARSE_OK;
		}
		if (!(h = AT(skb, off, 20)))
			return PARSE_SHORT;
		p->seq = (__u32)h[4] << 24 | (__u32)h[5] << 16 | (__u32)h[6] << 8 | h[7];
		p->flags = h[13];
		int hl = (h[12] >> 4) * 4;
		if (hl < 20)
			return PARSE_BAD;
		p->payload_len = l4len > hl ? l4len - hl : 0;
		if (hl < cap) {
			p->payload_off = off + hl;
			p->payload_cap = cap - hl;
		}
		p->sample = 1;
		return PARSE_OK;
	case IPPROTO_UDP:
		if (cap < 8) { /* the ports (above) from a header cut short */
			p->payload_len = 0;
			return PARSE_OK;
		}
		if (!(h = AT(skb, off, 8)))
			return PARSE_SHORT;
		p->payload_len = l4len > 8 ? l4len - 8 : 0;
		p->payload_off = off + 8;
		p->payload_cap = cap - 8;
		p->sample = 1;
		return PARSE_OK;
	case IPPROTO_SCTP: /* after a 12-byte common header; its chunks are not inspected */
		p->payload_len = l4len > 12 ? l4len - 12 : 0;
		return PARSE_OK;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (cap < 2)
			return PARSE_OK; /* decode keeps such a packet, without ports */
		if (!(h = AT(skb, off, 2)))
			return PARSE_SHORT;
		p->icmp_type = h[0];
		p->icmp_code = h[1];
		icmp_ports(p, proto, h[0], h[1]);
		p->payload_len = l4len > 4 ? l4len - 4 : 0;
		return PARSE_OK;
	}
	return PARSE_OK;
}

static __always_inline int ipv4(struct __sk_buff *skb, void *data, void *data_end, struct pkt *p, __u32 off)
{
	int avail = (int)skb->len - (int)off;
	if (avail < 20)
		return PARSE_BAD;
	struct iphdr *ip = (struct iphdr *)AT(skb, off, sizeof(struct iphdr));
	if (!ip)
		return PARSE_SHORT;
	if (ip->version != 4)
		return PARSE_BAD;
	int hl = ip->ihl * 4;
	int length = bpf_ntohs(ip->tot_len);
	if (length == 0) /* TSO: the frame gives the length */
		length = avail;
	if (length < 20 || hl < 20 || hl > length || hl > avail)
		return PARSE_BAD;
	addr4(p->key.a, ip->saddr);
	addr4(p->key.b, ip->daddr);
	p->ip_bytes = length;
	__u8 proto = ip->protocol;
	if (bpf_ntohs(ip->frag_off) & 0x1fff) { /* a later fragment: no transport header */
		p->key.proto = proto;
		p->payload_len = length - hl;
		return PARSE_OK;
	}
	return transport(skb, data, data_end, p, proto, off + hl, length - hl, avail - hl);
}

static __always_inline int ipv6(struct __sk_buff *skb, void *data, void *data_end, struct pkt *p, __u32 off)
{
	int avail = (int)skb->len - (int)off;
	if (avail < 40)
		return PARSE_BAD;
	struct ipv6hdr *ip = (struct ipv6hdr *)AT(skb, off, sizeof(struct ipv6hdr));
	if (!ip)
		return PARSE_SHORT;
	if (ip->version != 6)
		return PARSE_BAD;
	__builtin_memcpy(p->key.a, &ip->saddr, 16);
	__builtin_memcpy(p->key.b, &ip->daddr, 16);
	int l4len = bpf_ntohs(ip->payload_len);
	if (l4len == 0) /* jumbogram: the frame gives the length */
		l4len = avail - 40;
	p->ip_bytes = 40 + l4len;
	__u8 next = ip->nexthdr;
	__u32 h = off + 40;
	int rest = avail - 40;
	int i;
	for (i = 0; i < 8; i++) {
		__u8 *e;
		int n;
		if (next == 0 || next == 43 || next == 60 || next == 135 || next == 139 || next == 140) {
			/* hop-by-hop, routing, destination, mobility, HIP, shim6 */
			if (rest < 2)
				return PARSE_BAD;
			if (!(e = AT(skb, h, 2)))
				return PARSE_SHORT;
			n = ((int)e[1] + 1) * 8;
		} else if (next == 51) { /* authentication header */
			if (rest < 2)
				return PARSE_BAD;
			if (!(e = AT(skb, h, 2)))
				return PARSE_SHORT;
			n = ((int)e[1] + 2) * 4;
		} else if (next == 44) { /* fragment */
			if (rest < 8)
				return PARSE_BAD;
			if (!(e = AT(skb, h, 8)))
				return PARSE_SHORT;
			if ((e[2] << 8 | e[3]) & 0xfff8) { /* a later fragment: no transport header */
				p->key.proto = e[0];
				p->payload_len = l4len > 8 ? l4len - 8 : 0;
				return PARSE_OK;
			}
			n = 8; /* atomic or first fragment: its transport header follows */
		} else {
			break;
		}
		if (n > rest)
			return PARSE_BAD;
		next = e[0];
		h += n;
		rest -= n;
		l4len -= n;
	}
	if (i == 8 || l4len < 0)
		return PARSE_BAD;
	return transport(skb, data, data_end, p, next, h, l4len, rest);
}

/* parse is a global function: the verifier checks it once, on its own,
 * rather than once per path through its caller. */
__noinline int parse(struct __sk_buff *skb, struct pkt *p)
{
	__u32 off = 0;
	__u16 et;
	__u8 *h;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (!p)
		return PARSE_BAD;
	if (raw_ip) {
		if (skb->len < 1)
			return PARSE_BAD;
		if (!(h = AT(skb, 0, 1)))
			return PARSE_SHORT;
		if (h[0] >> 4 == 4)
			return ipv4(skb, data, data_end, p, 0);
		if (h[0] >> 4 == 6)
			return ipv6(skb, data, data_end, p, 0);
		return PARSE_BAD;
	}
	if (skb->len < ETH_HLEN)
		return PARSE_BAD;
	struct ethhdr *eth = (struct ethhdr *)AT(skb, 0, ETH_HLEN);
	if (!eth)
		return PARSE_SHORT;
	__builtin_memcpy(p->smac, eth->h_source, 6);
	__builtin_memcpy(p->dmac, eth->h_dest, 6);
	et = bpf_ntohs(eth->h_proto);
	off = ETH_HLEN;
	if (skb->vlan_present) { /* the outer tag, taken out of the frame by the kernel */
		p->key.vlan[0] = skb->vlan_tci & 0x0fff;
		p->key.nvlan = 1;
	}
	if (et < 0x0600) /* 802.3 length field: LLC */
		return PARSE_NOT_IP;
	for (int i = 0; i < 4; i++) {
		if (et != ETH_P_8021Q && et != ETH_P_8021AD && et != 0x9100)
			break;
		if (skb->len < off + 4)
			return PARSE_BAD;
		if (!(h = AT(skb, off, 4)))
			return PARSE_SHORT;
		__u16 id = ((__u16)h[0] << 8 | h[1]) & 0x0fff;
		if (p->key.nvlan == 0) {
			p->key.vlan[0] = id;
			p->key.nvlan = 1;
		} else if (p->key.nvlan == 1) {
			p->key.vlan[1] = id;
			p->key.nvlan = 2;
		}
		et = (__u16)h[2] << 8 | h[3];
		off += 4;
	}
	if (et == ETH_P_PPP_SES) {
		if (skb->len < off + 8)
			return PARSE_BAD;
		if (!(h = AT(skb, off, 8)))
			return PARSE_SHORT;
		off += 8;
		switch (h[6] << 8 | h[7]) {
		case 0x0021:
			return ipv4(skb, data, data_end, p, off);
		case 0x0057:
			return ipv6(skb, data, data_end, p, off);
		}
		return PARSE_NOT_IP;
	}
	if (et == ETH_P_IP)
		return ipv4(skb, data, data_end, p, off);
	if (et == ETH_P_IPV6)
		return ipv6(skb, data, data_end, p, off);
	return PARSE_NOT_IP;
}

/* canonical orders the key's endpoints as flow.Key.Canonical does and
 * reports whether it swapped them (the sender is then b). */
static __always_inline int canonical(struct ew_key *k)
{
	__u64 a0, a1, b0, b1;
	__builtin_memcpy(&a0, k->a, 8);
	__builtin_memcpy(&a1, k->a + 8, 8);
	__builtin_memcpy(&b0, k->b, 8);
	__builtin_memcpy(&b1, k->b + 8, 8);
	a0 = bpf_be64_to_cpu(a0);
	a1 = bpf_be64_to_cpu(a1);
	b0 = bpf_be64_to_cpu(b0);
	b1 = bpf_be64_to_cpu(b1);
	int swap;
	if (a0 != b0)
		swap = a0 > b0;
	else if (a1 != b1)
		swap = a1 > b1;
	else
		swap = k->port_a > k->port_b;
	if (!swap)
		return 0;
	__u8 t[16];
	__builtin_memcpy(t, k->a, 16);
	__builtin_memcpy(k->a, k->b, 16);
	__builtin_memcpy(k->b, t, 16);
	__u16 pt = k->port_a;
	k->port_a = k->port_b;
	k->port_b = pt;
	return 1;
}

static __always_inline void emit_flow(struct ew_stats *st, const struct ew_key *k, const struct ew_flow *v, __u64 now)
{
	struct ew_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		st->n[EW_C_RINGBUF_DROPS]++;
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = now;
	e->kind = EW_EVENT_FLOW;
	__builtin_memcpy(&e->key, k, sizeof(*k));
	__builtin_memcpy(&e->flow, v, sizeof(*v));
	bpf_ringbuf_submit(e, 0);
	st->n[EW_C_FLOW_EVENTS]++;
}

static __always_inline void emit_sample(struct __sk_buff *skb, struct ew_stats *st, const struct ew_key *k,
					const struct ew_flow *v, const struct pkt *p, __u64 now, __u8 egress)
{
	__u32 want = p->payload_cap < sample_bytes ? p->payload_cap : sample_bytes;
	__u32 n = p->payload_off + want;
	if (n > skb->len)
		n = skb->len;
	if (n > EW_SNAP_MAX)
		n = EW_SNAP_MAX;
	if (n < 1)
		return;
	__u32 zero = 0;
	struct ew_sample *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return;
	if (bpf_skb_load_bytes(skb, 0, s->data, n))
		return;
	struct ew_event *e = &s->ev;
	e->ts_ns = now;
	e->kind = EW_EVENT_SAMPLE;
	e->pkt_len = skb->len;
	e->cap_len = n;
	e->vlan_present = raw_ip ? 0 : skb->vlan_present;
	e->vlan_tci = skb->vlan_tci;
	e->vlan_proto = skb->vlan_proto;
	e->egress = egress;
	__builtin_memcpy(&e->key, k, sizeof(*k));
	__builtin_memcpy(&e->flow, v, sizeof(*v));
	if (bpf_ringbuf_output(&events, s, sizeof(*e) + n, 0)) {
		st->n[EW_C_RINGBUF_DROPS]++;
		return;
	}
	st->n[EW_C_SAMPLES]++;
}

/* History letters' bits, in the order of flowtable's historyLetters. */
enum { H_S, H_H, H_A, H_D, H_F, H_R, H_T, H_Q };

static __always_inline void history(struct ew_flow *v, int d, __u8 letter, int bit)
{
	struct ew_dir *s = &v->dir[d & 1];
	__u8 n = v->nhistory;
	if (s->history_seen & (1 << bit) || n >= EW_HISTORY)
		return;
	s->history_seen |= 1 << bit;
	v->history[n] = letter | (d ? 0x80 : 0);
	v->nhistory = n + 1;
}

/* account adds the packet to the flow (flowtable's entry.account and
 * tcpHistory) and reports whether it closed the connection. */
static __always_inline int account(struct ew_flow *v, const struct pkt *p, int d, __u64 now)
{
	struct ew_dir *s = &v->dir[d & 1];
	struct ew_dir *o = &v->dir[(d & 1) ^ 1];
	if (now > v->last_ns)
		v->last_ns = now;
	s->packets++;
	s->bytes += p->ip_bytes;
	s->payload += p->payload_len;
	if (!raw_ip) {
		__u16 *m = (__u16 *)s->mac;
		if ((m[0] | m[1] | m[2]) == 0)
			__builtin_memcpy(s->mac, p->smac, 6);
		m = (__u16 *)o->mac;
		if ((m[0] | m[1] | m[2]) == 0)
			__builtin_memcpy(o->mac, p->dmac, 6);
	}
	if (p->key.proto != IPPROTO_TCP)
		return 0;
	__u8 f = p->flags;
	s->flags |= f;
	if (f & TCP_SYN && f & (TCP_FIN | TCP_RST))
		history(v, d, 'Q', H_Q);
	else if (f & TCP_SYN && f & TCP_ACK)
		history(v, d, 'H', H_H);
	else if (f & TCP_SYN)
		history(v, d, 'S', H_S);
	if (f & TCP_FIN)
		history(v, d, 'F', H_F);
	if (f & TCP_RST)
		history(v, d, 'R', H_R);
	if (p->payload_len > 0) {
		__u32 end = p->seq + p->payload_len;
		int ahead = (int)(end - s->seq_end) > 0;
		if (s->seq_seen && !ahead)
			history(v, d, 'T', H_T);
		else
			history(v, d, 'D', H_D);
		if (!s->seq_seen || ahead) {
			s->seq_end = end;
			s->seq_seen = 1;
		}
	} else if ((f & (TCP_SYN | TCP_FIN | TCP_RST | TCP_ACK)) == TCP_ACK) {
		history(v, d, 'A', H_A);
	}
	if (f & TCP_RST) {
		v->rst = 1;
		return 1;
	}
	if (f & TCP_FIN)
		s->fin = 1;
	return v->dir[0].fin && v->dir[1].fin;
}

static __always_inline void start(struct ew_flow *v, const struct pkt *p, int from_b, __u64 now)
{
	__builtin_memset(v, 0, sizeof(*v));
	v->first_ns = now;
	v->last_ns = now;
	v->first_from_b = from_b;
	v->first_flags = p->flags;
	v->icmp_type = p->icmp_type;
	v->icmp_code = p->icmp_code;
}

/* since is now - t, or 0 when t is later: the coarse clock can lag a fine
 * timestamp by up to a tick. */
static __always_inline __u64 since(__u64 now, __u64 t)
{
	return now > t ? now - t : 0;
}

/* restart reports whether the packet starts a new record of the flow, as
 * flowtable's entry.restart decides, or as its closing list does once the
 * linger after FIN or RST has passed. */
static __always_inline int restart(const struct ew_flow *v, const struct pkt *p, __u64 now)
{
	if (v->close_ns && (p->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN && p->key.proto == IPPROTO_TCP)
		return 1;
	if (v->close_ns && since(now, v->close_ns) >= linger_ns) /* the table has closed it */
		return 1;
	return since(now, v->last_ns) >= idle_ns || since(now, v->first_ns) >= active_ns;
}

/* clock reads the time for a packet of an existing flow. The fine clock
 * (bpf_ktime_get_ns) costs a serialising TSC read, about a fifth of the
 * program on a VM; the coarse one (same CLOCK_MONOTONIC base, advanced once
 * per tick, 1-4 ms) costs a few loads. Packets that open, sample, close or
 * reset a flow get the fine clock, so the timestamps of short flows and of
 * every flow's start are exact; the steady-state packets of long flows get
 * the coarse one, as Cilium's conntrack does with jiffies. A flow's last
 * timestamp is then at most one tick early, and timeouts (seconds) do not
 * notice. */
static __always_inline __u64 clock(const struct ew_flow *v, const struct pkt *p, int d)
{
	if (p->flags & (TCP_SYN | TCP_FIN | TCP_RST) ||
	    (p->sample && p->payload_cap > 0 && v->dir[d & 1].samples < sample_packets))
		return bpf_ktime_get_ns();
	return bpf_ktime_get_coarse_ns();
}

static __always_inline int handle(struct __sk_buff *skb, __u8 egress)
{
	__u32 zero = 0;
	struct ew_stats *st = bpf_map_lookup_elem(&counters, &zero);
	if (!st)
		return TC_ACT_UNSPEC;
	struct pkt p;
	__builtin_memset(&p, 0, sizeof(p));
	int r = parse(skb, &p);
	if (r == PARSE_SHORT) {
		/* Headers beyond the linear part (a GRO or paged skb): pull
		 * them in and parse again. */
		__u32 n = skb->len < PULL_LEN ? skb->len : PULL_LEN;
		if (bpf_skb_pull_data(skb, n) == 0) {
			__builtin_memset(&p, 0, sizeof(p));
			r = parse(skb, &p);
		}
		if (r == PARSE_SHORT)
			r = PARSE_BAD;
	}
	if (r == PARSE_NOT_IP) {
		st->n[EW_C_NOT_IP]++;
		return TC_ACT_UNSPEC;
	}
	if (r != PARSE_OK) {
		st->n[EW_C_BAD]++;
		return TC_ACT_UNSPEC;
	}
	st->n[EW_C_PACKETS]++;
	st->n[EW_C_BYTES] += p.ip_bytes;

	int d = canonical(&p.key); /* the map key from here on */
	__u64 now;
	struct ew_flow *v = bpf_map_lookup_elem(&flows, &p.key);
	if (v) {
		now = clock(v, &p, d);
		if (restart(v, &p, now)) {
			now = bpf_ktime_get_ns(); /* the new record starts on the fine clock */
			emit_flow(st, &p.key, v, now);
			start(v, &p, d, now);
			st->n[EW_C_RESTARTS]++;
		}
	} else {
		now = bpf_ktime_get_ns();
		struct ew_flow nv;
		start(&nv, &p, d, now);
		long err = bpf_map_update_elem(&flows, &p.key, &nv, BPF_NOEXIST);
		if (err == 0)
			st->n[EW_C_FLOWS]++;
		else if (err != -17 /* EEXIST: another CPU created it */) {
			st->n[EW_C_MAP_FULL]++;
			return TC_ACT_UNSPEC;
		}
		v = bpf_map_lookup_elem(&flows, &p.key);
		if (!v)
			return TC_ACT_UNSPEC;
	}
	if (account(v, &p, d, now) && v->close_ns == 0) {
		v->close_ns = now;
		emit_flow(st, &p.key, v, now);
	}
	struct ew_dir *s = &v->dir[d & 1];
	if (p.sample && p.payload_cap > 0 && s->samples < sample_packets) {
		s->samples++;
		emit_sample(skb, st, &p.key, v, &p, now, egress);
	}
	return TC_ACT_UNSPEC;
}

SEC("tc")
int ingress(struct __sk_buff *skb)
{
	return handle(skb, 0);
}

SEC("tc")
int egress(struct __sk_buff *skb)
{
	return handle(skb, 1);
}
