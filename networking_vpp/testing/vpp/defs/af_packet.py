"""``af_packet.api`` (VPP 26.10, af_packet plugin): attach to kernel interfaces."""

NAME = "af_packet"

API = """
enum af_packet_mode : u32 {
  AF_PACKET_API_MODE_ETHERNET = 1,
  AF_PACKET_API_MODE_IP = 2,
};

enum af_packet_flags : u32 {
  AF_PACKET_API_FLAG_QDISC_BYPASS = 1,
  AF_PACKET_API_FLAG_CKSUM_GSO = 2,
  AF_PACKET_API_FLAG_VERSION_2 = 8 [backwards_compatible],
};

define af_packet_create_v3 {
  u32 client_index;
  u32 context;
  vl_api_af_packet_mode_t mode;
  vl_api_mac_address_t hw_addr;
  bool use_random_hw_addr;
  string host_if_name[64];
  u32 rx_frame_size;
  u32 tx_frame_size;
  u32 rx_frames_per_block;
  u32 tx_frames_per_block;
  vl_api_af_packet_flags_t flags;
  u16 num_rx_queues [default=1];
  u16 num_tx_queues [default=1];
};

define af_packet_create_v3_reply {
  u32 context;
  i32 retval;
  vl_api_interface_index_t sw_if_index;
};

autoreply define af_packet_delete {
  u32 client_index;
  u32 context;
  string host_if_name[64];
};

define af_packet_dump {
  u32 client_index;
  u32 context;
};

define af_packet_details {
  u32 context;
  vl_api_interface_index_t sw_if_index;
  string host_if_name[64];
};
"""
