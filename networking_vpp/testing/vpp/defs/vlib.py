"""``vlib.api`` (VPP 26.10): the debug CLI over the API (``cli_inband``)."""

NAME = "vlib"

API = """
define cli_inband {
  u32 client_index;
  u32 context;
  string cmd[];
};

define cli_inband_reply {
  u32 context;
  i32 retval;
  string reply[];
};
"""
