/* The ABI between the TC programs (capture.c) and user space. C owns it:
 * bpf2go generates the Go types from these structs (-type), so a field
 * changes here and nowhere else.
 *
 * Addresses are 16 bytes, IPv4 mapped as ::ffff:a.b.c.d, exactly as
 * flow.Addr packs them; ports and VLAN ids are in host byte order. */
#ifndef EDGEWARD_H
#define EDGEWARD_H

#include <linux/types.h>

#define EW_MAX_VLAN 2
#define EW_HISTORY 24
/* Bytes of a frame a sample event can hold: headers plus the payload bytes
 * the sample_bytes knob allows. Events take the ring-buffer space of the
 * bytes they carry, not of this bound; 16 KiB is what user space reassembles
 * of a TCP stream at most (inspect.Config.MaxStream). */
#define EW_SNAP_MAX 16384

/* A flow's canonical key: the endpoint with the lower address (then the
 * lower port) is a, so both directions of a conversation share one key, as
 * flow.Key.Canonical orders them. */
struct ew_key {
	__u8 a[16];
	__u8 b[16];
	__u16 port_a; /* ICMP: the Community ID port equivalents (flow.ICMPPorts) */
	__u16 port_b;
	__u8 proto;
	__u8 nvlan; /* valid entries in vlan, outer first */
	__u16 vlan[EW_MAX_VLAN];
	__u16 pad; /* zero: 44 bytes hash as 32-bit words (jhash2) */
};

/* What one endpoint of a flow sent. */
struct ew_dir {
	__u64 packets;
	__u64 bytes;   /* IP header + payload, from the IP length fields */
	__u64 payload; /* transport payload, from the headers */
	__u32 seq_end; /* highest TCP sequence number + payload seen */
	__u16 history_seen; /* bit per history letter already recorded */
	__u8 flags;    /* OR of the TCP flags */
	__u8 fin;
	__u8 seq_seen;
	__u8 samples;  /* payload packets sent to user space */
	__u8 mac[6];   /* this endpoint's MAC */
};

/* One flow's counters, kept in the flows LRU hash. */
struct ew_flow {
	__u64 first_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC); also the flow's generation */
	__u64 last_ns;
	__u64 close_ns; /* when FIN from both sides or RST closed it, 0 while open */
	struct ew_dir dir[2]; /* [0]: sent by key.a, [1]: sent by key.b */
	__u8 first_from_b; /* the first packet was sent by key.b */
	__u8 first_flags;  /* TCP flags of the first packet */
	__u8 icmp_type;    /* of the first packet */
	__u8 icmp_code;
	__u8 rst;
	__u8 nhistory;
	/* Zeek history letters in the order seen, upper case; bit 7 set when
	 * key.b sent the packet. User space turns sides into initiator and
	 * responder (upper and lower case). */
	__u8 history[EW_HISTORY];
	__u8 pad[2];
};

enum ew_event_kind {
	/* A payload packet of the flow: the frame's first cap_len bytes
	 * follow the event (struct ew_sample). */
	EW_EVENT_SAMPLE = 1,
	/* The flow closed (FIN from both sides, RST) or is being restarted
	 * (idle or active timeout, or a SYN reusing a closed flow's tuple):
	 * flow holds its final counters. */
	EW_EVENT_FLOW = 2,
};

struct ew_event {
	__u64 ts_ns;   /* bpf_ktime_get_ns */
	__u32 kind;    /* enum ew_event_kind */
	__u32 pkt_len; /* skb->len */
	__u32 cap_len; /* frame bytes in ew_sample.data */
	__u16 vlan_tci;   /* an outer tag the kernel took out of the frame */
	__u16 vlan_proto; /* its TPID, network byte order */
	__u8 vlan_present;
	__u8 egress;
	__u8 pad[6];
	struct ew_key key;
	__u8 pad2[4];
	struct ew_flow flow;
};

struct ew_sample {
	struct ew_event ev;
	__u8 data[EW_SNAP_MAX];
};

/* Indexes of the per-CPU counters array. */
enum ew_counter {
	EW_C_PACKETS = 0,   /* IP packets accounted */
	EW_C_BYTES,         /* their IP bytes */
	EW_C_NOT_IP,        /* frames without IP (ARP, LLDP, ...) */
	EW_C_BAD,           /* malformed or unsupported frames */
	EW_C_FLOWS,         /* flow entries created */
	EW_C_RESTARTS,      /* flows restarted in place (timeouts, tuple reuse) */
	EW_C_SAMPLES,       /* sample events sent */
	EW_C_FLOW_EVENTS,   /* flow events sent */
	EW_C_RINGBUF_DROPS, /* events lost: the ring buffer was full */
	EW_C_MAP_FULL,      /* flows not counted: the flows map refused the entry */
	EW_C_MAX,
};

#endif
