// Package inventory owns the corporate device inventory: which device,
// owner, site, country and home time zone a MAC address, hostname or IP
// address belongs to, loaded from a CSV or YAML file that is reloaded when
// it changes.
//
// A flow's internal side is matched by MAC address first, then by hostname
// (case-insensitive; "laptop-42" and "laptop-42.corp.example.com" match each
// other), then by static IP address. Lookups are lock-free and do not
// allocate.
//
// # File format
//
// The format is chosen by extension: .csv, or .yaml/.yml. Every device
// needs an id and at least one of macs, hostnames, ips, or, for a remote
// device seen only through its VPN session, wireguard_public_key or
// vpn_peers (see sensor/egress).
//
//	field                 meaning
//	id                    unique device id (asset tag), required
//	owner                 person or team the device is assigned to
//	assigned_site         site the device is expected at
//	assigned_country      ISO 3166-1 alpha-2 code, e.g. "DE"
//	home_timezone         IANA time zone name, e.g. "Europe/Berlin"
//	macs                  MAC addresses (any form net.ParseMAC accepts)
//	hostnames             host names, with or without a domain suffix
//	ips                   static IPv4/IPv6 addresses
//	wireguard_public_key  base64 WireGuard public key (32 bytes), optional
//	vpn_peers             names the VPN gives the device's sessions (OpenVPN
//	                      common name, a session feed's peer), optional
//
// CSV: the first non-comment row names the columns (any order; "mac",
// "hostname" and "ip" are accepted for the list columns); list cells
// separate their values with spaces, ';' or ','. Lines starting with '#'
// are comments.
//
//	# id,owner,...
//	id,owner,assigned_site,assigned_country,home_timezone,macs,hostnames,ips,wireguard_public_key
//	LT-0042,alice@example.com,BER-1,DE,Europe/Berlin,dc:a6:32:01:02:03,laptop-42.corp.example.com,10.1.2.42,
//	LT-0043,bob@example.com,NYC-2,US,America/New_York,"3c:22:fb:00:00:01;3c:22:fb:00:00:02",laptop-43,,
//
// YAML: a top-level "devices" sequence of mappings with the same keys; list
// fields take a sequence or a single scalar.
//
//	devices:
//	  - id: LT-0042
//	    owner: alice@example.com
//	    assigned_site: BER-1
//	    assigned_country: DE
//	    home_timezone: Europe/Berlin
//	    macs: [dc:a6:32:01:02:03]
//	    hostnames: [laptop-42.corp.example.com]
//	    ips: [10.1.2.42]
//
// testdata/good.csv and testdata/good.yaml are complete examples.
//
// # Errors
//
// A bad device (unknown time zone, malformed MAC, a MAC already claimed by
// another device, ...) is reported with file:line (file:line:col for YAML)
// and skipped; the rest of the file still loads. A file that cannot be read
// or parsed at all (YAML syntax error, CSV without a header, an empty file:
// most likely one being rewritten; an empty inventory is "devices: []") loads nothing;
// on reload the previous inventory stays in use.
package inventory
