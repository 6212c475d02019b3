"""``ip_types.api`` (VPP 26.10): the address and prefix types the ACL plugin uses.

Only what a declared message refers to is here. vpp_papi accepts and returns
friendly values for these types: a prefix as ``"10.0.0.0/24"``, an
``ipaddress`` network or ``{"address": ..., "len": ...}``; an address as text
or an ``ipaddress`` object (handlers get the ``ipaddress`` objects).
"""

NAME = "ip_types"

API = """
enum address_family : u8 {
  ADDRESS_IP4 = 0,
  ADDRESS_IP6 = 1,
};

enum ip_proto : u8 {
  IP_API_PROTO_HOPOPT = 0,
  IP_API_PROTO_ICMP = 1,
  IP_API_PROTO_IGMP = 2,
  IP_API_PROTO_TCP = 6,
  IP_API_PROTO_UDP = 17,
  IP_API_PROTO_GRE = 47,
  IP_API_PROTO_ESP = 50,
  IP_API_PROTO_AH = 51,
  IP_API_PROTO_ICMP6 = 58,
  IP_API_PROTO_EIGRP = 88,
  IP_API_PROTO_OSPF = 89,
  IP_API_PROTO_SCTP = 132,
  IP_API_PROTO_RESERVED = 255,
};

typedef u8 ip4_address[4];
typedef u8 ip6_address[16];

union address_union {
  vl_api_ip4_address_t ip4 [case=ADDRESS_IP4];
  vl_api_ip6_address_t ip6 [case=ADDRESS_IP6];
};

typedef address {
  vl_api_address_family_t af;
  vl_api_address_union_t un [discriminator=af];
};

typedef prefix {
  vl_api_address_t address;
  u8 len;
};
"""
