"""``acl_types.api`` and ``acl.api`` (VPP 26.10, ACL plugin API version 2.0.1).

The stateful ACLs (``acl_*``: first match wins, permit+reflect sessions) and
the MAC/IP anti-spoofing lists (``macip_acl_*``), and the ethertype
whitelists of the non-IP path. Not declared (not used by networking-vpp): the
hash-lookup switch and the per-interface counters switch.
"""

NAME = "acl"

API = """
option version = "2.0.1";

enum acl_action : u8 {
  ACL_ACTION_API_DENY = 0,
  ACL_ACTION_API_PERMIT = 1,
  ACL_ACTION_API_PERMIT_REFLECT = 2,
};

typedef acl_rule {
  vl_api_acl_action_t is_permit;
  vl_api_prefix_t src_prefix;
  vl_api_prefix_t dst_prefix;
  vl_api_ip_proto_t proto;
  u16 srcport_or_icmptype_first;
  u16 srcport_or_icmptype_last;
  u16 dstport_or_icmpcode_first;
  u16 dstport_or_icmpcode_last;
  u8 tcp_flags_mask;
  u8 tcp_flags_value;
};

typedef macip_acl_rule {
  vl_api_acl_action_t is_permit;
  vl_api_mac_address_t src_mac;
  vl_api_mac_address_t src_mac_mask;
  vl_api_prefix_t src_prefix;
};

define acl_plugin_get_version {
  u32 client_index;
  u32 context;
};

define acl_plugin_get_version_reply {
  u32 context;
  u32 major;
  u32 minor;
};

define acl_plugin_control_ping {
  u32 client_index;
  u32 context;
};

define acl_plugin_control_ping_reply {
  u32 context;
  i32 retval;
  u32 client_index;
  u32 vpe_pid;
};

define acl_plugin_get_conn_table_max_entries {
  u32 client_index;
  u32 context;
};

define acl_plugin_get_conn_table_max_entries_reply {
  u32 context;
  u64 conn_table_max_entries;
};

define acl_add_replace {
  u32 client_index;
  u32 context;
  u32 acl_index;
  string tag[64];
  u32 count;
  vl_api_acl_rule_t r[count];
};

define acl_add_replace_reply {
  u32 context;
  u32 acl_index;
  i32 retval;
};

autoreply define acl_del {
  u32 client_index;
  u32 context;
  u32 acl_index;
};

autoreply define acl_interface_add_del {
  u32 client_index;
  u32 context;
  bool is_add [default=true];
  bool is_input;
  vl_api_interface_index_t sw_if_index;
  u32 acl_index;
};

autoreply define acl_interface_set_acl_list {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u8 count;
  u8 n_input;
  u32 acls[count];
};

define acl_dump {
  u32 client_index;
  u32 context;
  u32 acl_index;
};

define acl_details {
  u32 context;
  u32 acl_index;
  string tag[64];
  u32 count;
  vl_api_acl_rule_t r[count];
};

define acl_interface_list_dump {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index [default=0xffffffff];
};

define acl_interface_list_details {
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u8 count;
  u8 n_input;
  u32 acls[count];
};

define macip_acl_add {
  u32 client_index;
  u32 context;
  string tag[64];
  u32 count;
  vl_api_macip_acl_rule_t r[count];
};

define macip_acl_add_reply {
  u32 context;
  u32 acl_index;
  i32 retval;
};

define macip_acl_add_replace {
  u32 client_index;
  u32 context;
  u32 acl_index [default=0xffffffff];
  string tag[64];
  u32 count;
  vl_api_macip_acl_rule_t r[count];
};

define macip_acl_add_replace_reply {
  u32 context;
  u32 acl_index;
  i32 retval;
};

autoreply define macip_acl_del {
  u32 client_index;
  u32 context;
  u32 acl_index;
};

autoreply define macip_acl_interface_add_del {
  u32 client_index;
  u32 context;
  bool is_add [default=true];
  vl_api_interface_index_t sw_if_index;
  u32 acl_index;
};

define macip_acl_dump {
  u32 client_index;
  u32 context;
  u32 acl_index [default=0xffffffff];
};

define macip_acl_details {
  u32 context;
  u32 acl_index;
  string tag[64];
  u32 count;
  vl_api_macip_acl_rule_t r[count];
};

define macip_acl_interface_get {
  u32 client_index;
  u32 context;
};

define macip_acl_interface_get_reply {
  u32 context;
  u32 count;
  u32 acls[count];
};

define macip_acl_interface_list_dump {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
};

define macip_acl_interface_list_details {
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u8 count;
  u32 acls[count];
};

autoreply define acl_interface_set_etype_whitelist {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u8 count;
  u8 n_input;
  u16 whitelist[count];
};

define acl_interface_etype_whitelist_dump {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
};

define acl_interface_etype_whitelist_details {
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u8 count;
  u8 n_input;
  u16 whitelist[count];
};
"""
