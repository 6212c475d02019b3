"""``l2.api`` (VPP 26.10): bridge domains, membership, VLAN tag rewrite, EFP filter."""

NAME = "l2"

API = """
enum l2_port_type : u32 {
  L2_API_PORT_TYPE_NORMAL = 0,
  L2_API_PORT_TYPE_BVI = 1,
  L2_API_PORT_TYPE_UU_FWD = 2,
};

typedef bridge_domain_sw_if {
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u8 shg;
};

autoreply define bridge_domain_add_del {
  u32 client_index;
  u32 context;
  u32 bd_id;
  bool flood;
  bool uu_flood;
  bool forward;
  bool learn;
  bool arp_term;
  bool arp_ufwd;
  u8 mac_age;
  string bd_tag[64];
  bool is_add [default=true];
  option deprecated;
};

define bridge_domain_add_del_v2 {
  u32 client_index;
  u32 context;
  u32 bd_id;
  bool flood;
  bool uu_flood;
  bool forward;
  bool learn;
  bool arp_term;
  bool arp_ufwd;
  u8 mac_age;
  string bd_tag[64];
  bool is_add [default=true];
};

define bridge_domain_add_del_v2_reply {
  u32 context;
  i32 retval;
  u32 bd_id;
};

define bridge_domain_dump {
  u32 client_index;
  u32 context;
  u32 bd_id [default=0xffffffff];
  vl_api_interface_index_t sw_if_index [default=0xffffffff];
};

define bridge_domain_details {
  u32 context;
  u32 bd_id;
  bool flood;
  bool uu_flood;
  bool forward;
  bool learn;
  bool arp_term;
  bool arp_ufwd;
  u8 mac_age;
  string bd_tag[64];
  vl_api_interface_index_t bvi_sw_if_index;
  vl_api_interface_index_t uu_fwd_sw_if_index;
  u32 n_sw_ifs;
  vl_api_bridge_domain_sw_if_t sw_if_details[n_sw_ifs];
};

autoreply define bridge_domain_set_learn_limit {
  u32 client_index;
  u32 context;
  u32 bd_id;
  u32 learn_limit;
};

autoreply define bridge_domain_set_mac_age {
  u32 client_index;
  u32 context;
  u32 bd_id;
  u8 mac_age;
};

autoreply define sw_interface_set_l2_bridge {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t rx_sw_if_index;
  u32 bd_id;
  vl_api_l2_port_type_t port_type;
  u8 shg;
  bool enable [default=true];
};

autoreply define l2_interface_efp_filter {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  bool enable_disable [default=true];
};

autoreply define l2_interface_vlan_tag_rewrite {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u32 vtr_op;
  u32 push_dot1q;
  u32 tag1;
  u32 tag2;
};
"""
