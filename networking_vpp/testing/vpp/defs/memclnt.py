"""``memclnt.api`` (VPP 26.10): the API's own housekeeping messages."""

NAME = "memclnt"

API = """
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
