"""``memclnt.api`` (VPP 26.10): the API's own housekeeping messages.

``sockclnt_create`` and ``sockclnt_delete`` are a socket client's
registration: the socket server (``socket_server.py``) answers them itself,
with the message table, before and after any handler runs.
"""

NAME = "memclnt"

API = """
typedef message_table_entry {
  u16 index;
  string name[64];
};

define sockclnt_create {
  u32 context;
  string name[64];
};

define sockclnt_create_reply {
  u32 client_index;
  u32 context;
  i32 response;
  u32 index;
  u16 count;
  vl_api_message_table_entry_t message_table[count];
};

define sockclnt_delete {
  u32 client_index;
  u32 context;
  u32 index;
};

define sockclnt_delete_reply {
  u32 context;
  i32 response;
};

define control_ping {
  u32 client_index;
  u32 context;
};

define control_ping_reply {
  u32 context;
  i32 retval;
  u32 client_index;
  u32 vpe_pid;
};
"""
