"""``interface.api`` (VPP 26.10): the messages of it the emulator implements."""

NAME = "interface"

API = """
autoreply define want_interface_events {
  u32 client_index;
  u32 context;
  u32 enable_disable;
  u32 pid;
};

service {
  rpc want_interface_events returns want_interface_events_reply
    events sw_interface_event;
};

define sw_interface_event {
  u32 client_index;
  u32 pid;
  vl_api_interface_index_t sw_if_index;
  vl_api_if_status_flags_t flags;
  bool deleted;
};

define sw_interface_dump {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index [default=0xffffffff];
  bool name_filter_valid;
  string name_filter[];
};

define sw_interface_details {
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u32 sup_sw_if_index;
  vl_api_mac_address_t l2_address;
  vl_api_if_status_flags_t flags;
  vl_api_if_type_t type;
  vl_api_link_duplex_t link_duplex;
  u32 link_speed;
  u16 link_mtu;
  u32 mtu[4];
  u32 sub_id;
  u8 sub_number_of_tags;
  u16 sub_outer_vlan_id;
  u16 sub_inner_vlan_id;
  vl_api_sub_if_flags_t sub_if_flags;
  u32 vtr_op;
  u32 vtr_push_dot1q;
  u32 vtr_tag1;
  u32 vtr_tag2;
  u16 outer_tag;
  vl_api_mac_address_t b_dmac;
  vl_api_mac_address_t b_smac;
  u16 b_vlanid;
  u32 i_sid;
  string interface_name[64];
  string interface_dev_type[64];
  string tag[64];
};

autoreply define sw_interface_set_flags {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  vl_api_if_status_flags_t flags;
};

autoreply define sw_interface_set_mtu {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u32 mtu[4];
};

autoreply define sw_interface_set_rx_mode {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  bool queue_id_valid;
  u32 queue_id;
  vl_api_rx_mode_t mode;
};

define sw_interface_rx_placement_dump {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
};

define sw_interface_rx_placement_details {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u32 queue_id;
  u32 worker_id;
  vl_api_rx_mode_t mode;
};

autoreply define sw_interface_tag_add_del {
  u32 client_index;
  u32 context;
  bool is_add;
  vl_api_interface_index_t sw_if_index;
  string tag[64];
};

define create_vlan_subif {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u32 vlan_id;
};

define create_vlan_subif_reply {
  u32 context;
  i32 retval;
  vl_api_interface_index_t sw_if_index;
};

define create_subif {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
  u32 sub_id;
  vl_api_sub_if_flags_t sub_if_flags;
  u16 outer_vlan_id;
  u16 inner_vlan_id;
};

define create_subif_reply {
  u32 context;
  i32 retval;
  vl_api_interface_index_t sw_if_index;
};

autoreply define delete_subif {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
};
"""
