"""``vhost_user.api`` (VPP 26.10, vhost plugin)."""

NAME = "vhost_user"

API = """
enum virtio_net_features_first_32 : u32 {
  VIRTIO_NET_F_API_CSUM = 1,
  VIRTIO_NET_F_API_GUEST_CSUM = 2,
  VIRTIO_NET_F_API_GUEST_TSO4 = 128,
  VIRTIO_NET_F_API_GUEST_TSO6 = 256,
  VIRTIO_NET_F_API_GUEST_UFO = 1024,
  VIRTIO_NET_F_API_HOST_TSO4 = 2048,
  VIRTIO_NET_F_API_HOST_TSO6 = 4096,
  VIRTIO_NET_F_API_HOST_UFO = 16384,
  VIRTIO_NET_F_API_MRG_RXBUF = 32768,
  VIRTIO_NET_F_API_CTRL_VQ = 131072,
  VIRTIO_NET_F_API_GUEST_ANNOUNCE = 2097152,
  VIRTIO_NET_F_API_MQ = 4194304,
  VHOST_F_API_LOG_ALL = 67108864,
  VIRTIO_F_API_ANY_LAYOUT = 134217728,
  VIRTIO_F_API_INDIRECT_DESC = 268435456,
  VHOST_USER_F_API_PROTOCOL_FEATURES = 1073741824,
};

enum virtio_net_features_last_32 : u32 {
  VIRTIO_F_API_VERSION_1 = 1,
};

define create_vhost_user_if_v2 {
  u32 client_index;
  u32 context;
  bool is_server;
  string sock_filename[256];
  bool renumber;
  bool disable_mrg_rxbuf;
  bool disable_indirect_desc;
  bool enable_gso;
  bool enable_packed;
  bool enable_event_idx;
  u32 custom_dev_instance;
  bool use_custom_mac;
  vl_api_mac_address_t mac_address;
  string tag[64];
};

define create_vhost_user_if_v2_reply {
  u32 context;
  i32 retval;
  vl_api_interface_index_t sw_if_index;
};

autoreply define delete_vhost_user_if {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index;
};

define sw_interface_vhost_user_dump {
  u32 client_index;
  u32 context;
  vl_api_interface_index_t sw_if_index [default=0xffffffff];
};

define sw_interface_vhost_user_details {
  u32 context;
  vl_api_interface_index_t sw_if_index;
  string interface_name[64];
  u32 virtio_net_hdr_sz;
  vl_api_virtio_net_features_first_32_t features_first_32;
  vl_api_virtio_net_features_last_32_t features_last_32;
  bool is_server;
  string sock_filename[256];
  u32 num_regions;
  i32 sock_errno;
};
"""
